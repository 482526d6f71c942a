"""``DocumentParser`` port: Upstage Document Parse over HTTP (httpx2, multipart upload).

Small files (a known page count up to ``DOCUMENT_PARSE_SYNC_MAX_PAGES``) are parsed with one
synchronous request; everything else goes through the asynchronous API: submit, poll the
request's status, download each 10-page batch from its pre-signed URL (no Authorization
header: S3 refuses two authentication mechanisms), join the batches in ``id`` order.

Time: every attempt takes its timeout from the current deadline (``resilience.deadline``)
and polling stops while ``DOCUMENT_PARSE_RESERVE_SECONDS`` (at most 30 % of the budget) are
still left for chunking, embedding and writing: the parse then raises
``DocumentParsePending`` (retryable). The request id is remembered per file (SHA-256 of
the bytes and the options), so the retry resumes polling instead of paying for a second
parse, and the same file with the same options sent again while Upstage keeps the result is
not paid for twice (``adapters.parse_requests``: in the documents bucket when deployed, so
another container resumes it too; docs/decisions.md, "Document Parse").

Rate: two client-side throttles, ``DOCUMENT_PARSE_SYNC_RPS`` and ``DOCUMENT_PARSE_ASYNC_RPS``
(Upstage: 3 and 6 requests per second), separate from the chat/embeddings limiter; status
polls and downloads count against the asynchronous one. Retries: a small bounded loop of its
own (``DOCUMENT_PARSE_MAX_RETRIES``; 429, 5xx, timeouts, connection errors; ``Retry-After``
honoured up to 60 s and never past the deadline). The key is read per request, never logged
and never part of an error message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx2 as httpx  # openai 3.x's HTTP client, already in the Lambda layer
import tenacity

from solar_rag.adapters.parse_requests import InMemoryRequestMemo, RequestMemo
from solar_rag.domain import LayoutElement
from solar_rag.errors import (
    DeadlineExceeded,
    DocumentParsePending,
    NotConfigured,
    PayloadTooLarge,
    RagError,
    UnsupportedDocument,
    UpstageKeyRejected,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from solar_rag.parsing.content_types import file_type
from solar_rag.resilience import deadline, retry
from solar_rag.resilience.rate_limit import RateLimiter, WaitTooLong
from solar_rag.settings import Settings

logger = logging.getLogger("solar_rag.document_parse")

SYNC_MAX_PAGES = 100
"""Upstage's limits (reference, console docs 2026): synchronous 100 pages / 100 MB,
asynchronous 2,000 pages / 500 MB."""
SYNC_MAX_BYTES = 100 * 1024 * 1024
ASYNC_MAX_PAGES = 2000
ASYNC_MAX_BYTES = 500 * 1024 * 1024
MAX_RETRY_AFTER_SECONDS = 60.0
RATE_WINDOW_SECONDS = 1.1
"""The client's "second" is 10 % longer than the server's: requests sent exactly one window
apart arrive with different network delays, and a server counting a true second would answer
the one that arrived early with 429."""
RESERVE_SHARE = 0.3
"""At most this share of a deadline's budget is kept back from polling."""
_MAX_UPSTREAM_MESSAGE = 300
_UNLIMITED = 1 << 40
PENDING_STATUSES = frozenset({"submitted", "started", "pending", "processing"})


class DocumentParseFailed(UnsupportedDocument):
    """Document Parse read the file and failed (it says why): the same file fails again."""


class DocumentParseClient:
    def __init__(
        self,
        settings: Settings,
        api_key: str | Callable[[], str],
        *,
        on_key_rejected: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
        memo: RequestMemo | None = None,
    ) -> None:
        if isinstance(api_key, str):
            fixed = api_key

            def constant() -> str:
                return fixed

            self._key: Callable[[], str] = constant
        else:
            self._key = api_key
        self._settings = settings
        self._base = (settings.document_parse_base_url or settings.upstage_base_url).rstrip("/")
        self._timeout = settings.document_parse_timeout_seconds
        self._retries = settings.document_parse_max_retries
        self._on_key_rejected = on_key_rejected
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter)
        # Real time for the throttles whatever ``sleep`` is: their waits are what the server
        # counts (``sleep`` and ``clock`` pace back-off and polling).
        self.sync_limiter = per_second(settings.document_parse_sync_rps)
        self.async_limiter = per_second(settings.document_parse_async_rps)
        self._http = httpx.Client(transport=transport, follow_redirects=False,
                                  timeout=httpx.Timeout(self._timeout, connect=5.0))
        self._memo: RequestMemo = memo or InMemoryRequestMemo()
        self._lock = threading.Lock()
        self._presented: set[str] = set()

    def __repr__(self) -> str:
        return f"DocumentParseClient(base_url={self._base!r})"

    def close(self) -> None:
        self._http.close()

    # -- the port ----------------------------------------------------------------------

    def parse(self, data: bytes, filename: str, *, pages: int | None = None,
              force_ocr: bool = False) -> list[LayoutElement]:
        if pages is not None and pages > ASYNC_MAX_PAGES:
            raise PayloadTooLarge(f"{filename} has {pages} pages; Document Parse reads at most "
                                  f"{ASYNC_MAX_PAGES}")
        if len(data) > ASYNC_MAX_BYTES:
            raise PayloadTooLarge(f"{filename} is {len(data)} bytes; Document Parse reads at "
                                  f"most {ASYNC_MAX_BYTES}")
        sync_pages = min(self._settings.document_parse_sync_max_pages, SYNC_MAX_PAGES)
        if pages is not None and pages <= sync_pages and len(data) <= SYNC_MAX_BYTES:
            body = self._call("POST", f"{self._base}/document-digitization", what="parse",
                              limiter=self.sync_limiter, files=self._upload(data, filename),
                              form=self._form(force_ocr))
            return elements_of(body, self._settings.document_parse_output_format)
        return self._parse_async(data, filename, force_ocr)

    # -- asynchronous parse ---------------------------------------------------------------

    def _parse_async(self, data: bytes, filename: str, force_ocr: bool) -> list[LayoutElement]:
        form = self._form(force_ocr)
        # The file and the options it is parsed with: other options are another parse.
        digest = hashlib.sha256(data + json.dumps(form, sort_keys=True).encode()).hexdigest()
        request_id = self._memo.get(digest)
        if request_id is not None:
            logger.info("document parse resumed", extra={"request_id": request_id})
            try:
                return self._finish(request_id, filename, digest)
            except DocumentParseFailed:
                raise
            except RagError as error:
                if error.retryable:
                    raise
                # e.g. a request Upstage no longer knows, or its links expired: parse anew
                logger.info("document parse %s cannot be resumed (%s): submitting again",
                            request_id, error.message)
        body = self._call("POST", f"{self._base}/document-digitization/async",
                          what="parse submission", limiter=self.async_limiter,
                          files=self._upload(data, filename), form=form)
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise UpstreamError("Document Parse returned no request_id")
        self._memo.put(digest, request_id)
        logger.info("document parse submitted", extra={"request_id": request_id,
                                                      "file": filename})
        return self._finish(request_id, filename, digest)

    def _finish(self, request_id: str, filename: str, digest: str) -> list[LayoutElement]:
        """Poll until done and download; the request stays remembered while it runs and
        after it succeeded (the same file with the same options is not paid for twice while
        Upstage keeps the result), and is forgotten when it failed or was refused."""
        try:
            status = self._wait(request_id, filename)
            return self._download(status, filename)
        except RagError as error:
            if not error.retryable:
                self._memo.forget(digest)
            raise

    def _wait(self, request_id: str, filename: str) -> Mapping[str, Any]:
        started = self._clock()
        poll = self._settings.document_parse_poll_seconds
        while True:
            try:
                status = self._call("GET",
                                    f"{self._base}/document-digitization/requests/{request_id}",
                                    what="parse status", limiter=self.async_limiter)
            except DeadlineExceeded:
                raise DocumentParsePending(
                    f"Document Parse is still reading {filename} (request {request_id}) and "
                    "this invocation's time is up; the retry picks up the result") from None
            state = status.get("status")
            if state == "completed":
                return status
            if state == "failed":
                raise DocumentParseFailed(
                    f"Document Parse failed to read {filename}: "
                    f"{self._reason(status.get('failure_message'))}")
            if state not in PENDING_STATUSES:
                raise UpstreamError(f"Document Parse answered an unknown status {state!r}")
            waited = self._clock() - started
            if waited + poll > self._settings.document_parse_max_wait_seconds:
                raise DocumentParsePending(
                    f"Document Parse is still reading {filename} after {waited:.0f} s "
                    f"(request {request_id}); try again later")
            if not self._time_for_another_poll(poll):
                raise DocumentParsePending(
                    f"Document Parse is still reading {filename} (request {request_id}) and "
                    "this invocation's time is nearly up; the retry picks up the result")
            self._sleep(poll)

    def _time_for_another_poll(self, poll: float) -> bool:
        current = deadline.current()
        if current is None:
            return True
        reserve = min(self._settings.document_parse_reserve_seconds,
                      current.budget_seconds * RESERVE_SHARE)
        return current.remaining() - poll - deadline.MIN_ATTEMPT_SECONDS > reserve

    def _download(self, status: Mapping[str, Any], filename: str) -> list[LayoutElement]:
        batches = status.get("batches")
        if not isinstance(batches, list) or not batches:
            raise UpstreamError("Document Parse completed without result batches")
        elements: list[LayoutElement] = []
        for batch in sorted(batches, key=_batch_order):
            if not isinstance(batch, Mapping):
                raise UpstreamError("Document Parse returned an unusable batch")
            if batch.get("status") == "failed":
                raise DocumentParseFailed(
                    f"Document Parse failed to read pages {batch.get('start_page', '?')}-"
                    f"{batch.get('end_page', '?')} of {filename}: "
                    f"{self._reason(batch.get('failure_message'))}")
            url = batch.get("download_url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise UpstreamError("Document Parse returned a batch without a download URL")
            body = self._call("GET", url, what="result download", limiter=self.async_limiter,
                              authenticated=False)
            first = batch.get("start_page")
            elements.extend(elements_of(body, self._settings.document_parse_output_format,
                                        first_page=first if isinstance(first, int) else 1))
        return elements

    # -- one HTTP call with bounded retries ----------------------------------------------

    def _call(self, method: str, url: str, *, what: str, limiter: RateLimiter,
              files: Mapping[str, tuple[str, bytes, str]] | None = None,
              form: Mapping[str, str] | None = None, authenticated: bool = True
              ) -> dict[str, Any]:
        """One request under ``retry.DOCUMENT_PARSE``: each attempt waits for the limiter and
        takes its timeout from the deadline; the last failure is raised as a domain error."""
        label = f"the Document Parse {what} request"

        def attempt() -> dict[str, Any]:
            try:
                limiter.acquire(0, max_wait=max(0.0, deadline.time_left(math.inf)
                                                - deadline.MIN_ATTEMPT_SECONDS))
            except WaitTooLong:
                raise DeadlineExceeded(f"{label} could not start within the time budget "
                                       "(Document Parse rate limit)") from None
            timeout = deadline.attempt_timeout(self._timeout, label)
            headers = {"Authorization": f"Bearer {self._api_key()}"} if authenticated else {}
            try:
                response = self._http.request(method, url, headers=headers, files=files,
                                              data=form, timeout=timeout)
            except httpx.TimeoutException:
                raise _Failed(UpstreamTimeout(
                    f"Upstage did not answer {label} within {timeout:.3g} s")) from None
            except httpx.TransportError:
                raise _Failed(UpstreamError(f"could not connect to Upstage for {label}")) from None
            if response.is_success:
                return self._json(response, label)
            retry_after = _retry_after(response)
            if response.status_code == 429 and retry_after is not None:
                limiter.penalise(min(retry_after, MAX_RETRY_AFTER_SECONDS))
            raise _Failed(self._status_error(response, label), retry_after)

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            message = error.failure.message if isinstance(error, _Failed) else str(error)
            logger.info("document parse %s: %s, retrying in %.2f s", what, message,
                        state.upcoming_sleep)

        policy = retry.DOCUMENT_PARSE.with_attempts(self._retries + 1).with_backoff(
            replace(retry.DOCUMENT_PARSE.backoff, rng=self._rng))
        try:
            result: dict[str, Any] = retry.retrying(
                policy, retry_on=lambda e: isinstance(e, _Failed) and e.failure.retryable,
                retry_after=lambda e: e.retry_after if isinstance(e, _Failed) else None,
                sleep=self._sleep, before_sleep=log_retry)(attempt)
        except _Failed as failed:
            logger.warning("document parse %s failed: %s", what, failed.failure.message)
            raise failed.failure from None
        return result

    def _api_key(self) -> str:
        key = self._key().strip()
        if not key:
            raise NotConfigured("The Upstage API key is empty")
        with self._lock:
            self._presented.add(key)
        return key

    def _status_error(self, response: httpx.Response, label: str) -> RagError:
        status = response.status_code
        detail = self._reason(_upstream_message(response), default="")
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            if self._on_key_rejected is not None:
                self._on_key_rejected()
            return UpstageKeyRejected(f"Upstage rejected the API key ({status}) for Document "
                                      "Parse; check UPSTAGE_API_KEY or the configured secret")
        if status == 429:
            return UpstreamRateLimited(f"Upstage rate limit exceeded for {label}; try again later")
        if status == 413:
            return PayloadTooLarge(f"Document Parse refused the file as too large (413){suffix}")
        if status in (408, 409) or status >= 500:
            return UpstreamError(f"{label} failed with HTTP {status}{suffix}")
        return UnsupportedDocument(f"Document Parse rejected the file (HTTP {status}){suffix}")

    def _json(self, response: httpx.Response, label: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamError(f"Upstage returned an unusable answer to {label}")
        return body

    def _reason(self, text: object, default: str = "no reason given") -> str:
        if not isinstance(text, str) or not text.strip():
            return default
        with self._lock:
            known = list(self._presented)
        for key in known:
            text = text.replace(key, "***")
        text = text.strip()
        return text if len(text) <= _MAX_UPSTREAM_MESSAGE else text[:_MAX_UPSTREAM_MESSAGE - 3] + "..."

    def _upload(self, data: bytes, filename: str) -> dict[str, tuple[str, bytes, str]]:
        kind = file_type("." + filename.rsplit(".", 1)[-1]) if "." in filename else None
        name = filename.replace("\\", "/").rsplit("/", 1)[-1] or "document"
        return {"document": (name, data, kind.media_type if kind else "application/octet-stream")}

    def _form(self, force_ocr: bool = False) -> dict[str, str]:
        settings = self._settings
        return {
            "model": settings.document_parse_model,
            "mode": settings.document_parse_mode,
            "ocr": "force" if force_ocr else settings.document_parse_ocr,
            "output_formats": f"['{settings.document_parse_output_format}']",
            "coordinates": "false",
        }


def per_second(rate: float) -> RateLimiter:
    """A throttle of ``rate`` requests per second: ``floor(rate)`` per (slightly long) second,
    or one per ``1 / rate`` seconds below one (a container's share of the organisation's)."""
    if rate >= 1:
        return RateLimiter(int(rate), _UNLIMITED, window_seconds=RATE_WINDOW_SECONDS)
    return RateLimiter(1, _UNLIMITED, window_seconds=RATE_WINDOW_SECONDS / rate)


def elements_of(body: Mapping[str, Any], output_format: str, *, first_page: int = 1
                ) -> list[LayoutElement]:
    """The elements of a (sync or batch) result, in reading order.

    Each element's text is its content in ``output_format`` (Markdown or HTML), else any
    other form it has. Page numbers are the document's: a batch whose pages count from 1
    (below its ``start_page``) is shifted to it.
    """
    raw = body.get("elements")
    if not isinstance(raw, list):
        raise UpstreamError("Document Parse returned a result without elements")
    found: list[tuple[int, int, LayoutElement]] = []
    for position, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise UpstreamError("Document Parse returned an unusable element")
        page = item.get("page")
        category = item.get("category")
        if not isinstance(page, int) or isinstance(page, bool) or page < 1 \
                or not isinstance(category, str):
            raise UpstreamError("Document Parse returned an element without page or category")
        if page < first_page:
            page += first_page - 1
        order = item.get("id")
        found.append((order if isinstance(order, int) else position, position,
                      LayoutElement(category, page, _content(item.get("content"), output_format))))
    found.sort(key=lambda entry: (entry[0], entry[1]))
    return [element for _, _, element in found]


def _content(content: object, preferred: str) -> str:
    if not isinstance(content, Mapping):
        return ""
    for key in (preferred, "markdown", "text", "html"):
        value = content.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _batch_order(batch: object) -> tuple[int, int]:
    if isinstance(batch, Mapping):
        ident = batch.get("id")
        start = batch.get("start_page")
        return (ident if isinstance(ident, int) else 0, start if isinstance(start, int) else 0)
    return (0, 0)


def _upstream_message(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            message = inner.get("message")
            return message if isinstance(message, str) else None
        if isinstance(inner, str):
            return inner
    return None


class _Failed(Exception):
    """One attempt's failure, with the pause the server asked for (if any)."""

    def __init__(self, failure: RagError, retry_after: float | None = None) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = response.headers.get(name)
        if raw:
            try:
                value = float(raw) * scale
            except ValueError:
                continue
            if math.isfinite(value) and value >= 0:
                return value
    return None
