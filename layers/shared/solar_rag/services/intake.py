"""Documents submitted over HTTP within the request's time budget, and presigned uploads.

``POST /v1/documents`` indexes in groups. Where a documents bucket exists (the deployed
stack), a group that cannot be finished before the request's deadline is not attempted:
its documents are written to the bucket under ``QUEUE_PREFIX`` and answered ``queued``; the
S3 pipeline indexes them (``S3Ingestion``) and ``GET /v1/documents/{id}`` shows ``queued``,
then ``indexed`` or ``failed``. Without a bucket (the local service) everything is indexed in
the request, as before.

A queued object names the version it carries (the content hash); the registry records that
version as the ``pending_version`` of a ``queued`` record (its other fields stay the
acknowledged version's). The pipeline indexes a queued object only while the
registry still says ``queued`` for that version: a newer write (indexed, deleted, queued
again) supersedes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath

from solar_rag.document_ids import document_id_problem
from solar_rag.domain import DocumentRecord, DocumentStatus, Metadata, Outcome, SourceDocument, Upsert
from solar_rag.errors import DeadlineExceeded, InvalidInput, PayloadTooLarge, RagError
from solar_rag.parsing.pages import layout_from_json, layout_json
from solar_rag.parsing.sources import SIDECAR_SUFFIX
from solar_rag.ports import DocumentRegistry, ObjectStore, PresignedUpload
from solar_rag.resilience import deadline
from solar_rag.services.indexing import IndexingService, groups_by_size
from solar_rag.text.tokens import estimate_tokens

logger = logging.getLogger("solar_rag.intake")

RESERVED_PREFIX = ".solar-rag/"
"""Keys the service writes itself; never a document, never an upload target."""
QUEUE_PREFIX = RESERVED_PREFIX + "queued/"
QUEUED_FORMAT = "solar-rag-queued-v1"
UNLIMITED_TOKENS_PER_SECOND = 1e9
"""Without a token rate limit (the offline embedder) only the margin counts."""
GROUP_MARGIN_SECONDS = 3.0
UPLOAD_EXPIRY_SECONDS = 900
MAX_QUEUED_BYTES = 32 * 1024 * 1024
"""A queued object holds one document of a request (at most 4 MiB in Lambda, whatever
``MAX_OBJECT_BYTES`` says about uploads)."""
MAX_KEY_BYTES = 1024  # S3's limit for an object key


def _utcnow() -> datetime:
    return datetime.now(UTC)


def queued_key(document_id: str) -> str:
    """One key per document id: a newer queued version replaces the older object."""
    return QUEUE_PREFIX + hashlib.sha256(document_id.encode("utf-8")).hexdigest() + ".json"


def is_reserved(key: str) -> bool:
    return key.startswith(RESERVED_PREFIX)


@dataclass(frozen=True, slots=True)
class QueuedDocument:
    document: SourceDocument
    version: str

    def to_json(self) -> bytes:
        doc = self.document
        return json.dumps({
            "format": QUEUED_FORMAT, "version": self.version,
            "document": {"id": doc.id, "text": doc.text, "title": doc.title,
                         "content_type": doc.content_type, "source": doc.source,
                         "metadata": doc.metadata},
            **({"layout": layout_json(doc.parsed)} if doc.parsed is not None else {}),
        }, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> QueuedDocument:
        try:
            body = json.loads(data)
            raw = body["document"]
            if body.get("format") != QUEUED_FORMAT or not isinstance(raw, dict):
                raise ValueError("not a queued document")
            doc = SourceDocument(
                id=str(raw["id"]), text=str(raw["text"]), title=raw.get("title"),
                content_type=str(raw.get("content_type") or "text/plain"),
                source=raw.get("source"), metadata=dict(raw.get("metadata") or {}))
            if body.get("layout") is not None:  # pages and headings a file reader found
                doc = replace(doc, parsed=layout_from_json(doc.text, body["layout"]))
            return cls(doc, str(body["version"]))
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidInput(f"queued object is not a queued document ({error})") from None


def still_queued(current: DocumentRecord | None, queued: QueuedDocument) -> bool:
    """Whether the registry still waits for this queued version (nothing newer happened)."""
    return (current is not None and current.status == DocumentStatus.QUEUED
            and current.pending_version == queued.version)


class DocumentIntake:
    def __init__(self, indexing: IndexingService, registry: DocumentRegistry, *,
                 queue: ObjectStore | None, tokens_per_second: float = UNLIMITED_TOKENS_PER_SECOND,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        """``tokens_per_second``: the embedder's sustained rate (its tokens-per-minute limit
        / 60): a group is only started when the deadline leaves its estimated tokens at that
        rate plus ``GROUP_MARGIN_SECONDS``. Conservative on purpose: a fresh container could
        burst through a minute's budget at once, but the request cannot know the limiter's
        state, and a group that waits for it past the deadline is work thrown away."""
        self._tokens_per_second = tokens_per_second
        self._indexing = indexing
        self._registry = registry
        self._queue = queue
        self._clock = clock

    def submit(self, docs: Sequence[SourceDocument]) -> list[Outcome]:
        """One outcome per document (``indexed``, ``unchanged`` or ``queued``).

        Every document is validated first (an invalid one stops the call before any work).
        A document that fails later is recorded, the others go on, and the first failure is
        raised at the end (as ``IndexingService.index_many``).
        """
        for doc in docs:
            self._indexing.validate(doc)
        upserts = [Upsert(doc) for doc in docs]
        if self._queue is None or deadline.current() is None or len({d.id for d in docs}) != len(docs):
            return [outcome.result() for outcome in self._indexing.apply(upserts)]
        outcomes: list[Outcome] = []
        out_of_time = False
        for group in groups_by_size(upserts):
            batch = [upserts[position] for position in group]
            out_of_time = out_of_time or not self._time_for(batch)  # then queue all the rest
            if out_of_time:
                outcomes += [self._enqueue(upsert.document) for upsert in batch]
                continue
            outcomes += [self._enqueue(upsert.document) if isinstance(outcome.error, DeadlineExceeded)
                         else outcome for upsert, outcome in zip(batch, self._indexing.apply(batch),
                                                                 strict=True)]
        return [outcome.result() for outcome in outcomes]

    def _time_for(self, group: Sequence[Upsert]) -> bool:
        tokens = sum(estimate_tokens(upsert.document.text) for upsert in group)
        needed = tokens / self._tokens_per_second + GROUP_MARGIN_SECONDS
        return deadline.time_left(float("inf")) >= needed

    def _enqueue(self, doc: SourceDocument) -> Outcome:
        try:
            return self._write_queued(doc)
        except RagError as error:
            return Outcome(doc.id, "failed", error=error)

    def _write_queued(self, doc: SourceDocument) -> Outcome:
        assert self._queue is not None
        version = self._indexing.content_hash(doc)
        with self._registry.locked(doc.id):
            current = self._registry.get(doc.id)
            if current and current.status == DocumentStatus.INDEXED and current.content_hash == version:
                return Outcome(doc.id, "unchanged", current.chunks)
            # The record first: the pipeline indexes the object only while the registry says
            # this version is queued, so an object written after a crash here is harmless.
            # The other fields stay the acknowledged version's (as for an ``indexing`` intent).
            base = current or DocumentRecord(id=doc.id, status=DocumentStatus.QUEUED, title=doc.title,
                                             source=doc.source, content_type=doc.content_type,
                                             metadata=dict(doc.metadata))
            self._registry.put(replace(
                base, status=DocumentStatus.QUEUED, pending_version=version,
                pending_since=self._clock(), error=None, updated_at=self._clock()))
        self._queue.put(queued_key(doc.id), QueuedDocument(doc, version).to_json(),
                        content_type="application/json")
        logger.info("document queued for the S3 pipeline", extra={"document_id": doc.id})
        return Outcome(doc.id, "queued")



@dataclass(frozen=True, slots=True)
class UploadTicket:
    document_id: str
    upload: PresignedUpload
    sidecar_written: bool


class UploadService:
    """Presigned uploads straight to the documents bucket (the S3 pipeline indexes them)."""

    def __init__(self, objects: ObjectStore, *, supported_extensions: Collection[str],
                 max_object_bytes: int, expires_in: int = UPLOAD_EXPIRY_SECONDS) -> None:
        self._objects = objects
        self._extensions = frozenset(e.lower() for e in supported_extensions)
        self._max_object_bytes = max_object_bytes
        self._expires_in = expires_in

    def presign(self, key: str, *, size: int | None = None, content_type: str | None = None,
                metadata: Metadata | None = None) -> UploadTicket:
        self._check_key(key)
        if size is not None and size > self._max_object_bytes:
            raise PayloadTooLarge(f"the file is {size} bytes; the limit is {self._max_object_bytes} "
                                  "(MAX_OBJECT_BYTES)")
        if metadata:
            # Written before the upload exists, so the document's first indexing sees it.
            sidecar = json.dumps({"metadataAttributes": metadata}, ensure_ascii=False).encode("utf-8")
            self._objects.put(key + SIDECAR_SUFFIX, sidecar, content_type="application/json")
        upload = self._objects.presign_upload(key, max_bytes=self._max_object_bytes,
                                              expires_in=self._expires_in, content_type=content_type)
        return UploadTicket(key, upload, bool(metadata))

    def _check_key(self, key: str) -> None:
        problem = document_id_problem(key)
        if problem is not None:
            raise InvalidInput(problem)
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:  # the grammar has no lone surrogates
            raise InvalidInput(f"the document id must be at most {MAX_KEY_BYTES} bytes of UTF-8 "
                               "(an S3 key)")
        if is_reserved(key):
            raise InvalidInput(f"ids under {RESERVED_PREFIX!r} are reserved for the service")
        if key.endswith(SIDECAR_SUFFIX):
            raise InvalidInput(f"keys ending in {SIDECAR_SUFFIX!r} are metadata sidecars, not documents")
        suffix = PurePosixPath(key).suffix.lower()
        if suffix not in self._extensions:
            raise InvalidInput(f"unsupported file type {suffix or '(no extension)'}; supported: "
                               f"{', '.join(sorted(self._extensions))}")
