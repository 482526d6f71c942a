"""Upstage Document Parse, faked inside ``FakeUpstage`` (``fake.document_parse``).

Endpoints (reference ``upstage.md`` §3):

- ``POST {base}/document-digitization``: multipart upload, the parse result at once;
- ``POST {base}/document-digitization/async``: ``{"request_id"}``;
- ``GET {base}/document-digitization/requests/{id}``: ``status`` submitted → started →
  completed (or failed, with ``failure_message``) and ``batches[]`` of 10 pages, each with a
  ``download_url`` (pre-signed: it refuses an ``Authorization`` header, as S3 does) that
  serves the sync shape for its pages.

As strict as the real API where the reference says what it accepts: the Bearer key; a
``multipart/form-data`` body with the file in ``document`` and a known ``model``; only the
documented form fields, with their documented values (``mode``, ``ocr``, ``output_formats``
as a list literal, booleans as ``true``/``false``); the formats Upstage reads (sniffed from
the bytes, not trusted from the name); 100 pages / 100 MB synchronous and 2,000 pages /
500 MB asynchronous (413 above); 3 requests per second synchronous and 6 asynchronous (429
with ``Retry-After``). It cannot OCR: a test registers the elements a file (by its SHA-256)
parses to, and an unregistered file is refused with a message saying so.
"""

from __future__ import annotations

import ast
import hashlib
import io
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

MODELS = {"document-parse": "document-parse-260930", "document-parse-260930": "document-parse-260930",
          "document-parse-260128": "document-parse-260128",
          "document-parse-nightly": "document-parse-nightly",
          "document-parse-experimental": "document-parse-experimental"}
FIELDS = frozenset({"document", "model", "mode", "ocr", "output_formats", "coordinates",
                    "chart_recognition", "merge_multipage_tables", "base64_encoding"})
MODES = frozenset({"standard", "enhanced", "auto"})
OUTPUT_FORMATS = frozenset({"html", "markdown", "text"})
BATCH_PAGES = 10


@dataclass
class Element:
    """What one element of a registered file holds (content in every output format)."""

    category: str
    page: int
    text: str
    markdown: str | None = None
    html: str | None = None

    def content(self, formats: Sequence[str]) -> dict[str, str]:
        forms = {"text": self.text, "markdown": self.markdown if self.markdown is not None
                 else self.text, "html": self.html if self.html is not None
                 else f"<p>{self.text}</p>"}
        return {name: forms[name] if name in formats else "" for name in ("html", "markdown", "text")}


@dataclass
class Script:
    elements: list[Element]
    pages: int
    polls: int = 1
    """Status polls answered submitted/started before the request is completed."""
    failure: str | None = None
    """An asynchronous parse that ends ``failed`` with this message."""


@dataclass
class Job:
    id: str
    script: Script
    formats: list[str]
    model: str
    polls: int = 0


@dataclass
class ParseRequest:
    method: str
    path: str
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    sha256: str | None = None
    authorized: bool = False
    status: int = 0


class FakeDocumentParse:
    def __init__(self, base_url: Any, api_key: Any) -> None:
        self._base_url = base_url  # callables: the server's address is known once it runs
        self._api_key = api_key
        self.scripts: dict[str, Script] = {}
        self.jobs: dict[str, Job] = {}
        self.requests: list[ParseRequest] = []
        self.sync_max_pages = 100
        self.async_max_pages = 2000
        self.sync_max_bytes = 100 * 1024 * 1024
        self.async_max_bytes = 500 * 1024 * 1024
        self.sync_rps: int | None = 3
        self.async_rps: int | None = 6
        self.relative_batch_pages = False
        """Batch downloads number their pages from 1 (else: the document's page numbers)."""
        self.faults: deque[tuple[int, dict[str, str]]] = deque()
        self._windows: dict[str, deque[float]] = {"sync": deque(), "async": deque()}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- what tests use --------------------------------------------------------------------

    def register(self, data: bytes, elements: Sequence[Element], *, pages: int | None = None,
                 polls: int = 1, failure: str | None = None) -> str:
        """What ``data`` parses to; returns its SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        count = pages if pages is not None else max((e.page for e in elements), default=1)
        self.scripts[digest] = Script(list(elements), count, polls, failure)
        return digest

    def fail_next(self, status: int, *, times: int = 1,
                  headers: Mapping[str, str] | None = None) -> None:
        for _ in range(times):
            self.faults.append((status, dict(headers or {})))

    def calls(self, kind: str) -> list[ParseRequest]:
        """Recorded requests of one kind: sync, submit, status, download."""
        prefix = "/v1/document-digitization"
        kinds = {"sync": lambda r: r.path == prefix,
                 "submit": lambda r: r.path == prefix + "/async",
                 "status": lambda r: r.path.startswith(prefix + "/requests/"),
                 "download": lambda r: r.path.startswith(prefix + "/results/")}
        return [r for r in self.requests if kinds[kind](r)]

    # -- serving ---------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: Mapping[str, str], raw: bytes
               ) -> tuple[int, Any, dict[str, str]]:
        record = ParseRequest(method, path, authorized="authorization" in headers)
        with self._lock:
            self.requests.append(record)
        status, body, extra = self._answer(method, path, headers, raw, record)
        record.status = status
        return status, body, extra

    def _answer(self, method: str, path: str, headers: Mapping[str, str], raw: bytes,
                record: ParseRequest) -> tuple[int, Any, dict[str, str]]:
        prefix = "/v1/document-digitization"
        if path.startswith(prefix + "/results/"):
            if method != "GET":
                return _error(405, f"Method {method} not allowed")
            if "authorization" in headers:
                return _error(400, "Only one auth mechanism allowed; only the X-Amz-Algorithm "
                                   "query parameter, Signature query string parameter or the "
                                   "Authorization header should be specified",
                              "InvalidArgument")
            return self._download(path.removeprefix(prefix + "/results/"))
        expected = f"Bearer {self._api_key()}" if self._api_key() is not None else None
        if expected is not None and headers.get("authorization") != expected:
            return _error(401, "Invalid API key", "invalid_api_key")
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
        if fault is not None:
            return fault[0], {"error": {"message": f"Injected fault {fault[0]}",
                                        "type": "server_error", "code": None}}, fault[1]
        if path in (prefix, prefix + "/async"):
            if method != "POST":
                return _error(405, f"Method {method} not allowed")
            kind = "sync" if path == prefix else "async"
            limited = self._rate_limited(kind)
            if limited:
                return limited
            return self._parse(kind, headers, raw, record)
        if path.startswith(prefix + "/requests/"):
            if method != "GET":
                return _error(405, f"Method {method} not allowed")
            limited = self._rate_limited("async")
            if limited:
                return limited
            return self._status(path.removeprefix(prefix + "/requests/"))
        return _error(404, f"Unknown path {path}", "not_found")

    def _rate_limited(self, kind: str) -> tuple[int, Any, dict[str, str]] | None:
        limit = self.sync_rps if kind == "sync" else self.async_rps
        if limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            window = self._windows[kind]
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                wait = window[0] + 1.0 - now
                return (429, {"error": {"message": "Too many requests", "type": "rate_limit",
                                        "code": "too_many_requests"}},
                        {"retry-after": str(max(1, math.ceil(wait)))})
            window.append(now)
        return None

    def _parse(self, kind: str, headers: Mapping[str, str], raw: bytes, record: ParseRequest
               ) -> tuple[int, Any, dict[str, str]]:
        content_type = headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
            return _error(400, "The request must be multipart/form-data with a boundary")
        parts = _multipart(content_type, raw)
        if parts is None:
            return _error(400, "The multipart body could not be parsed")
        fields: dict[str, str] = {}
        document: tuple[str, bytes] | None = None
        for name, filename, payload in parts:
            if name not in FIELDS:
                return _error(400, f"Unknown parameter: {name}")
            if name in fields or (name == "document" and document is not None):
                return _error(400, f"Parameter {name} given twice")
            if name == "document":
                if filename is None:
                    return _error(400, "document must be a file")
                document = (filename, payload)
            else:
                if filename is not None:
                    return _error(400, f"{name} must be a form field, not a file")
                fields[name] = payload.decode("utf-8")
        record.fields = fields
        if document is None:
            return _error(400, "The document parameter is required")
        record.filename, data = document
        record.sha256 = hashlib.sha256(data).hexdigest()
        problem = _check_fields(fields)
        if problem:
            return _error(400, problem)
        if not data:
            return _error(400, "The document is empty")
        if _sniff(data, record.filename) is None:
            return _error(415, "Unsupported document format: supported formats are JPEG, PNG, "
                               "BMP, TIFF, HEIC, PDF, DOCX, PPTX, XLSX, HWP, HWPX",
                          "unsupported_document_format")
        script = self.scripts.get(record.sha256)
        pages = script.pages if script is not None else _pdf_pages(data)
        max_pages, max_bytes = ((self.sync_max_pages, self.sync_max_bytes) if kind == "sync"
                                else (self.async_max_pages, self.async_max_bytes))
        if len(data) > max_bytes:
            return _error(413, f"The document is larger than {max_bytes} bytes", "file_too_large")
        if pages is not None and pages > max_pages:
            return _error(413, f"The document has {pages} pages; the limit is {max_pages}",
                          "page_limit_exceeded")
        if script is None:
            return _error(400, f"fake Document Parse cannot OCR: no result registered for "
                               f"sha256 {record.sha256}", "fake_unregistered")
        formats = ast.literal_eval(fields.get("output_formats", "['html']"))
        model = MODELS[fields["model"]]
        if kind == "sync":
            return 200, _result(script.elements, formats, model, first=1,
                                last=script.pages, relative=False), {}
        request_id = f"fake-{next(self._ids):06d}"
        with self._lock:
            self.jobs[request_id] = Job(request_id, script, list(formats), model)
        return 200, {"request_id": request_id}, {}

    def _status(self, request_id: str) -> tuple[int, Any, dict[str, str]]:
        job = self.jobs.get(request_id)
        if job is None:
            return _error(404, f"Request {request_id} not found", "not_found")
        job.polls += 1
        script = job.script
        body: dict[str, Any] = {"id": job.id, "model": job.model, "failure_message": "",
                                "total_pages": script.pages, "requested_at": "2026-12-06T00:00:00Z"}
        if job.polls <= script.polls:
            body |= {"status": "submitted" if job.polls == 1 else "started",
                     "completed_pages": 0, "batches": []}
            return 200, body, {}
        failed = script.failure is not None
        batches = []
        for number, start in enumerate(range(1, script.pages + 1, BATCH_PAGES)):
            end = min(start + BATCH_PAGES - 1, script.pages)
            batches.append({
                "id": number, "model": job.model, "start_page": start, "end_page": end,
                "status": "failed" if failed else "completed",
                "failure_message": script.failure or "",
                "download_url": "" if failed else
                f"{self._base_url()}/document-digitization/results/{job.id}/{number}"
                "?X-Amz-Signature=fake",
                "requested_at": "2026-12-06T00:00:00Z", "updated_at": "2026-12-06T00:00:10Z"})
        body |= {"status": "failed" if failed else "completed",
                 "failure_message": script.failure or "",
                 "completed_pages": 0 if failed else script.pages, "batches": batches}
        return 200, body, {}

    def _download(self, tail: str) -> tuple[int, Any, dict[str, str]]:
        request_id, _, number = tail.partition("/")
        job = self.jobs.get(request_id)
        if job is None or not number.isdigit() or job.script.failure is not None:
            return _error(404, "NoSuchKey", "NoSuchKey")
        start = int(number) * BATCH_PAGES + 1
        if start > job.script.pages:
            return _error(404, "NoSuchKey", "NoSuchKey")
        end = min(start + BATCH_PAGES - 1, job.script.pages)
        return 200, _result(job.script.elements, job.formats, job.model, first=start, last=end,
                            relative=self.relative_batch_pages), {}


def _result(elements: Sequence[Element], formats: Sequence[str], model: str, *, first: int,
            last: int, relative: bool) -> dict[str, Any]:
    chosen = [e for e in elements if first <= e.page <= last]
    shown: list[dict[str, Any]] = []
    for number, element in enumerate(chosen):
        page = element.page - first + 1 if relative else element.page
        shown.append({"id": number, "page": page, "category": element.category,
                      "content": element.content(formats),
                      "coordinates": [{"x": 0.1, "y": 0.1}, {"x": 0.9, "y": 0.1},
                                      {"x": 0.9, "y": 0.2}, {"x": 0.1, "y": 0.2}]})
    joined = {name: "\n".join(e["content"][name] for e in shown) for name in ("html", "markdown", "text")}
    return {"api": "2.0", "model": model, "content": joined, "elements": shown,
            "usage": {"pages": last - first + 1}}


def _check_fields(fields: Mapping[str, str]) -> str | None:
    model = fields.get("model")
    if not model:
        return "The model parameter is required"
    if model not in MODELS:
        return f"Unknown model {model!r}"
    mode = fields.get("mode", "standard")
    if mode not in MODES:
        return f"mode must be one of standard, enhanced, auto (got {mode!r})"
    if fields.get("ocr", "auto") not in ("auto", "force"):
        return "ocr must be auto or force"
    for flag in ("coordinates", "chart_recognition", "merge_multipage_tables"):
        if flag in fields and fields[flag] not in ("true", "false"):
            return f"{flag} must be true or false"
    raw = fields.get("output_formats")
    if raw is not None:
        try:
            formats = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return "output_formats must be a list such as \"['html', 'markdown']\""
        if not isinstance(formats, list) or not formats \
                or any(f not in OUTPUT_FORMATS for f in formats):
            return "output_formats must list some of html, markdown, text"
    return None


def _multipart(content_type: str, raw: bytes) -> list[tuple[str, str | None, bytes]] | None:
    try:
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw)
    except Exception:
        return None
    if not message.is_multipart():
        return None
    parts: list[tuple[str, str | None, bytes]] = []
    for part in message.iter_parts():
        assert isinstance(part, Message)
        disposition = part.get("Content-Disposition", "")
        if not str(disposition).startswith("form-data"):
            return None
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            return None
        parts.append((name, filename, payload))
    return parts


def _sniff(data: bytes, filename: str) -> str | None:
    """The format the bytes are (the name only tells the zip-based office formats apart)."""
    name = filename.lower()
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "heic"
    if data.startswith(b"PK\x03\x04"):
        for suffix in (".docx", ".pptx", ".xlsx", ".hwpx"):
            if name.endswith(suffix):
                return suffix[1:]
        return None
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") and name.endswith(".hwp"):
        return "hwp"
    return None


def _pdf_pages(data: bytes) -> int | None:
    if not data.startswith(b"%PDF-"):
        return 1 if data[:4] not in (b"II*\x00", b"MM\x00*") else None
    try:
        from pypdf import PdfReader

        return len(PdfReader(io.BytesIO(data)).pages)
    except Exception:
        return None


def _error(status: int, message: str, code: str = "invalid_request"
           ) -> tuple[int, Any, dict[str, str]]:
    return status, {"error": {"message": message, "type": "invalid_request_error",
                              "code": code}}, {}
