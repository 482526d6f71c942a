"""Index and delete documents: idempotent, ordered, never half-written."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Literal, Protocol, TypedDict

from solar_rag.document_ids import check_document_id
from solar_rag.domain import (
    CONTENT_TYPES,
    PENDING_DELETE,
    ChangeMarker,
    Chunk,
    DocumentRecord,
    DocumentStatus,
    DocumentWrite,
    EmbeddedChunk,
    EmbeddingKind,
    ParsedDocument,
    SourceDocument,
    WriteResult,
    stable_hash,
)
from solar_rag.errors import (
    ConcurrentUpdate,
    DocumentNotFound,
    InvalidInput,
    PayloadTooLarge,
    RagError,
    UpstreamError,
)
from solar_rag.ports import AtomicIndexStore, DocumentRegistry, Embedder, RecordFor, VectorStore

logger = logging.getLogger("solar_rag.indexing")

OUTAGE_AFTER = 2
"""Documents in a row failing a retryable upstream call that end one-by-one embedding."""
OutcomeStatus = Literal["indexed", "unchanged", "queued", "deleted", "skipped", "failed"]


MAX_GROUP_CHARS = 200_000
"""Text indexed together (S3 batches, HTTP requests): under a minute of Upstage's 300,000
tokens/min, so each group is written before the next is embedded and a batch of large
documents makes progress within its time instead of losing all of it at once."""


def groups_by_size(docs: Sequence[SourceDocument]) -> list[list[int]]:
    """Positions of ``docs`` in consecutive groups of at most ``MAX_GROUP_CHARS`` of text
    (a bigger document alone)."""
    groups: list[list[int]] = []
    size = 0
    for position, doc in enumerate(docs):
        if groups and size + len(doc.text) <= MAX_GROUP_CHARS:
            groups[-1].append(position)
            size += len(doc.text)
        else:
            groups.append([position])
            size = len(doc.text)
    return groups


class ChunkerLike(Protocol):
    def chunk(self, doc: SourceDocument, parsed: ParsedDocument, version: str) -> list[Chunk]: ...


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    id: str
    status: OutcomeStatus
    chunks: int = 0
    error: str | None = None


class _OrderingFields(TypedDict):
    sequencer: str | None
    etag: str | None
    version_id: str | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A document parsed and chunked (and, once embedded, with one vector per chunk)."""

    doc: SourceDocument
    version: str
    chunks: list[Chunk]
    title: str | None
    marker: ChangeMarker | None = None
    vectors: list[list[float]] = field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chunk_ids(record: DocumentRecord | None) -> list[str]:
    return record.chunk_ids if record else []


def embedding_input(chunk: Chunk) -> str:
    """What is embedded for a chunk: its text with the title and section as context."""
    context = " / ".join(part for part in (chunk.title, chunk.section) if part)
    return f"{context}\n\n{chunk.text}" if context else chunk.text


class IndexingService:
    def __init__(
        self,
        *,
        parse: Callable[[SourceDocument], ParsedDocument],
        chunker: ChunkerLike,
        chunker_signature: str,
        embedder: Embedder,
        store: VectorStore,
        registry: DocumentRegistry,
        max_document_chars: int = 2_000_000,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._parse = parse
        self._chunker = chunker
        self._chunker_signature = chunker_signature
        self._embedder = embedder
        self._store = store
        self._registry = registry
        # One transaction for chunks and record where the store offers it; elsewhere an
        # intent (status `indexing`) is recorded first (docs/reliability.md).
        self._atomic = (store if isinstance(store, AtomicIndexStore)
                        and store.shares_transactions_with(registry) else None)
        self._max_document_chars = max_document_chars
        self._clock = clock

    def content_hash(self, doc: SourceDocument) -> str:
        """Changes whenever anything that ends up in the index would change."""
        layout: tuple[object, ...] = ()
        if doc.parsed is not None:  # pages and headings a file reader found: metadata too
            parsed = doc.parsed
            layout = (parsed.title, [(s.heading, s.start) for s in parsed.sections],
                      [(p.start, p.page) for p in parsed.pages])
        return stable_hash(
            "doc-v1", self._embedder.space, self._chunker_signature, doc.text, doc.title,
            doc.content_type, doc.source, doc.metadata, *layout,
        )

    def validate(self, doc: SourceDocument) -> None:
        check_document_id(doc.id)
        if doc.content_type not in CONTENT_TYPES:
            raise InvalidInput(
                f"content_type must be one of {', '.join(CONTENT_TYPES)}, got {doc.content_type!r}"
            )
        if not doc.text.strip():
            raise InvalidInput(f"document {doc.id!r} has no text")
        if len(doc.text) > self._max_document_chars:
            raise PayloadTooLarge(
                f"document {doc.id!r} has {len(doc.text)} characters; "
                f"the limit is {self._max_document_chars}"
            )

    def index(self, doc: SourceDocument, *, marker: ChangeMarker | None = None) -> IndexOutcome:
        (result,) = self.index_each([doc], [marker])
        if isinstance(result, RagError):
            raise result
        return result

    def index_many(self, docs: Sequence[SourceDocument]) -> list[IndexOutcome]:
        """``index_each`` for callers that want an exception: every document is validated
        first (an invalid one stops the call before any work); after the batch, the first
        document's failure is raised (the others are indexed and recorded)."""
        for doc in docs:
            self.validate(doc)
        outcomes: list[IndexOutcome] = []
        for result in self.index_each(docs):
            if isinstance(result, RagError):
                raise result
            outcomes.append(result)
        return outcomes

    def index_each(self, docs: Sequence[SourceDocument],
                   markers: Sequence[ChangeMarker | None] | None = None,
                   ) -> list[IndexOutcome | RagError]:
        """Index several documents with shared embedding requests; one result per document.

        Upstage allows 100 requests a minute: one request per small document would leave most
        of the token budget unused. Parsing, chunking and embedding happen for the whole batch
        (outside the locks); the documents are then written in one store call (one bulk, one
        stale-chunk sweep) under all their locks, each with the same checks as ``index``
        (``markers``, one per document, order S3 events as in ``index``). A document that
        fails (invalid, unparsable, rejected by the store, its lock busy) gets the error as
        its result; an embedding failure is every pending document's. Failures after
        validation are recorded in the registry. Duplicate ids are indexed one after the
        other, in order.
        """
        marks = list(markers) if markers is not None else [None] * len(docs)
        if len(marks) != len(docs):
            raise ValueError("one marker per document")
        if len({doc.id for doc in docs}) != len(docs):
            return [self._index_one(doc, marker) for doc, marker in zip(docs, marks, strict=True)]
        results: dict[str, IndexOutcome | RagError] = {}
        pending: list[_Prepared] = []
        recheck: list[_Prepared] = []
        for doc, marker in zip(docs, marks, strict=True):
            try:
                self.validate(doc)
            except RagError as error:
                results[doc.id] = error
                continue
            version = self.content_hash(doc)
            skipped = self._skip_outcome(doc, version, self._registry.get(doc.id), marker)
            if skipped and marker is None:
                results[doc.id] = skipped
                continue
            if skipped:  # the event is recorded under the lock, where it is checked again
                recheck.append(_Prepared(doc, version, [], None, marker))
                continue
            try:
                pending.append(self._prepare(doc, version, marker))
            except RagError as error:
                self._record_failure_locked(doc, error.message)
                results[doc.id] = error
        embedded, failed = self._embed_isolating(pending)
        for prepared in pending:
            embedding_error = failed.get(prepared.doc.id)
            if embedding_error is not None:
                self._record_failure_locked(prepared.doc, embedding_error.message)
                results[prepared.doc.id] = embedding_error
        results.update(self._write_locked(embedded, recheck))
        return [results[doc.id] for doc in docs]

    def _index_one(self, doc: SourceDocument, marker: ChangeMarker | None
                   ) -> IndexOutcome | RagError:
        try:
            return self.index(doc, marker=marker)
        except RagError as error:
            return error

    def _write_locked(self, embedded: Sequence[_Prepared], recheck: Sequence[_Prepared],
                      ) -> dict[str, IndexOutcome | RagError]:
        """Take the documents' locks in id order (overlapping batches cannot deadlock), then
        write the embedded ones together and record the events of ``recheck`` (found with
        nothing to write). A document whose lock cannot be taken fails alone."""
        results: dict[str, IndexOutcome | RagError] = {}
        with ExitStack() as locks:
            for prepared in sorted([*embedded, *recheck], key=lambda p: p.doc.id):
                try:
                    locks.enter_context(self._registry.locked(prepared.doc.id))
                except RagError as error:
                    results[prepared.doc.id] = error
            for prepared in recheck:
                if prepared.doc.id not in results:
                    results[prepared.doc.id] = self._recorded_skip(prepared)
            results.update(self._apply_many([p for p in embedded if p.doc.id not in results]))
        return results

    def _recorded_skip(self, prepared: _Prepared) -> IndexOutcome | RagError:
        doc = prepared.doc
        skipped = self._skip(doc, prepared.version, self._registry.get(doc.id), prepared.marker)
        if skipped:
            return skipped
        return ConcurrentUpdate(f"document {doc.id!r} changed while it was being indexed; "
                                "retry later")

    def _skip(self, doc: SourceDocument, version: str, current: DocumentRecord | None,
              marker: ChangeMarker | None) -> IndexOutcome | None:
        """The outcome when there is nothing to write; records the event's sequencer on
        unchanged content. The caller holds the document's lock."""
        skipped = self._skip_outcome(doc, version, current, marker)
        if skipped and skipped.status == "skipped":
            logger.info("skipping stale event", extra={"document_id": doc.id})
        if skipped and skipped.status == "unchanged" and current and marker and marker.sequencer:
            self._registry.put(replace(current, sequencer=marker.sequencer,
                                       etag=marker.etag, version_id=marker.version_id))
        return skipped

    @staticmethod
    def _skip_outcome(doc: SourceDocument, version: str, current: DocumentRecord | None,
                      marker: ChangeMarker | None) -> IndexOutcome | None:
        """A stale event or unchanged content: nothing to write (no side effects)."""
        if marker and current and not marker.is_newer_than(current.sequencer):
            return IndexOutcome(doc.id, "skipped", current.chunks)
        if current and current.status == DocumentStatus.INDEXED and current.content_hash == version:
            return IndexOutcome(doc.id, "unchanged", current.chunks)
        return None

    def _prepare(self, doc: SourceDocument, version: str,
                 marker: ChangeMarker | None = None) -> _Prepared:
        parsed = self._parse(doc)
        chunks = self._chunker.chunk(doc, parsed, version)
        if not chunks:
            raise InvalidInput(f"document {doc.id!r} produced no text to index")
        return _Prepared(doc, version, chunks, parsed.title, marker)

    def _embed_isolating(self, pending: Sequence[_Prepared]
                         ) -> tuple[list[_Prepared], dict[str, RagError]]:
        """Embed in shared requests; the documents embedded and the errors of the others.

        When a request shared by several documents fails upstream (Upstage refusing or
        crashing on one input), each document is embedded on its own, so one bad document
        fails alone instead of failing its neighbours. After ``OUTAGE_AFTER`` documents in a
        row fail with a retryable error it is an outage, not one document: the rest get the
        error without more requests.
        """
        try:
            return self._embed(pending), {}
        except UpstreamError as error:
            shared: RagError = error
            if len(pending) < 2:
                return [], {p.doc.id: error for p in pending}
        except RagError as error:
            return [], {p.doc.id: error for p in pending}
        logger.warning("shared embedding request failed (%s); embedding %d documents one by one",
                       shared.message, len(pending))
        embedded: list[_Prepared] = []
        failed: dict[str, RagError] = {}
        in_a_row = 0
        for prepared in pending:
            if in_a_row >= OUTAGE_AFTER:
                failed[prepared.doc.id] = shared
                continue
            try:
                embedded.extend(self._embed([prepared]))
                in_a_row = 0
            except RagError as error:
                failed[prepared.doc.id] = shared = error
                in_a_row = in_a_row + 1 if error.retryable else 0
        return embedded, failed

    def _embed(self, prepared: Sequence[_Prepared]) -> list[_Prepared]:
        """One embedder call for every chunk of every document (it batches by count and tokens)."""
        texts = [embedding_input(chunk) for item in prepared for chunk in item.chunks]
        vectors = self._embedder.embed(texts, EmbeddingKind.PASSAGE) if texts else []
        result, offset = [], 0
        for item in prepared:
            result.append(replace(item, vectors=vectors[offset: offset + len(item.chunks)]))
            offset += len(item.chunks)
        return result

    def _apply_many(self, embedded: Sequence[_Prepared]) -> dict[str, IndexOutcome | RagError]:
        """Write embedded documents in one store call; the caller holds every lock.

        Each document is checked again under its lock (another writer may have indexed it
        since, or a newer event arrived). Every failure is recorded and returned.
        """
        results: dict[str, IndexOutcome | RagError] = {}
        currents: dict[str, DocumentRecord | None] = {}
        to_write: list[_Prepared] = []
        for prepared in embedded:
            current = currents[prepared.doc.id] = self._registry.get(prepared.doc.id)
            skipped = self._skip(prepared.doc, prepared.version, current, prepared.marker)
            if skipped:
                results[prepared.doc.id] = skipped
            else:
                to_write.append(prepared)
        if not to_write:
            return results
        writes = [DocumentWrite(p.doc.id, p.version, self._embedded_chunks(p),
                                _chunk_ids(currents[p.doc.id])) for p in to_write]
        records: list[RecordFor] = [partial(self._indexed_record, p, currents[p.doc.id])
                                    for p in to_write]
        try:
            if self._atomic is not None:
                written = self._atomic.upsert_documents_recorded(writes, records)
            else:
                for p in to_write:
                    self._registry.put(self._intent(p.doc.id, currents[p.doc.id], p.version, p.doc))
                written = self._store.upsert_documents(writes)
        except RagError as error:
            written = [WriteResult(p.doc.id, error=error) for p in to_write]
        for prepared, record, result in zip(to_write, records, written, strict=True):
            current = currents[prepared.doc.id]
            if result.error is not None:
                self._record_failure(prepared.doc, current, prepared.marker, result.error.message)
                results[prepared.doc.id] = result.error
                continue
            if self._atomic is None:
                self._registry.put(record(result.stored_ids))
            logger.info("indexed document",
                        extra={"document_id": prepared.doc.id, "chunks": len(result.stored_ids)})
            results[prepared.doc.id] = IndexOutcome(prepared.doc.id, "indexed",
                                                    len(result.stored_ids))
        return results

    def _intent(self, document_id: str, current: DocumentRecord | None, target: str,
                doc: SourceDocument | None = None) -> DocumentRecord:
        """The registry row while ``target`` is written: status ``indexing``, every other
        field still the acknowledged version's (for a store that cannot share a transaction
        with the registry; readers and the next write resolve an interrupted one)."""
        base = current or DocumentRecord(
            id=document_id, status=DocumentStatus.INDEXING, title=doc.title if doc else None,
            source=doc.source if doc else None,
            content_type=doc.content_type if doc else "text/plain",
            metadata=dict(doc.metadata) if doc else {})
        return replace(base, status=DocumentStatus.INDEXING, pending_version=target,
                       pending_since=self._clock())

    def _remove(self, current: DocumentRecord | None, record: DocumentRecord) -> None:
        """Remove every chunk of ``record.id`` and store ``record`` (a tombstone or a failure)."""
        if self._atomic is not None:
            self._atomic.delete_document_recorded(record)
            return
        self._registry.put(self._intent(record.id, current, PENDING_DELETE))
        self._store.delete_document(record.id, chunk_ids=_chunk_ids(current))
        self._registry.put(record)

    @staticmethod
    def _embedded_chunks(prepared: _Prepared) -> list[EmbeddedChunk]:
        return [EmbeddedChunk(c, v)
                for c, v in zip(prepared.chunks, prepared.vectors, strict=True)]

    def _indexed_record(self, prepared: _Prepared, current: DocumentRecord | None,
                        stored_ids: Sequence[str]) -> DocumentRecord:
        doc = prepared.doc
        return DocumentRecord(
            id=doc.id, status=DocumentStatus.INDEXED, title=doc.title or prepared.title,
            source=doc.source, content_type=doc.content_type, chunks=len(stored_ids),
            content_hash=prepared.version, metadata=dict(doc.metadata), indexed_at=self._clock(),
            updated_at=self._clock(), error=None,
            **self._ordering(prepared.marker, current),
            chunk_ids=list(stored_ids),
        )

    def _record_failure_locked(self, doc: SourceDocument, reason: str) -> None:
        with self._registry.locked(doc.id):
            self._record_failure(doc, self._registry.get(doc.id), None, reason)

    @staticmethod
    def _ordering(marker: ChangeMarker | None, current: DocumentRecord | None) -> _OrderingFields:
        """What a new record says about the event it applies: the newest sequencer seen, and
        the S3 object version (none for API calls)."""
        sequencer = marker.sequencer if marker and marker.sequencer else (
            current.sequencer if current else None)
        return {"sequencer": sequencer, "etag": marker.etag if marker else None,
                "version_id": marker.version_id if marker else None}

    def _record_failure(self, doc: SourceDocument, current: DocumentRecord | None,
                        marker: ChangeMarker | None, reason: str) -> None:
        """Record why the last attempt failed; what was indexed before stays as it was."""
        base = current or DocumentRecord(id=doc.id, status=DocumentStatus.FAILED, title=doc.title,
                                         source=doc.source, content_type=doc.content_type,
                                         metadata=dict(doc.metadata))
        self._registry.put(replace(base, status=DocumentStatus.FAILED, error=reason,
                                   updated_at=self._clock(), pending_version=None,
                                   pending_since=None))

    def mark_failed(self, document_id: str, reason: str, *, marker: ChangeMarker | None = None,
                    source: str | None = None) -> IndexOutcome:
        """Record a document that cannot be indexed at all (unsupported type, too big).

        Its previous chunks are removed: the object that replaced them is not searchable.
        """
        with self._registry.locked(document_id):
            current = self._registry.get(document_id)
            if marker and current and not marker.is_newer_than(current.sequencer):
                return IndexOutcome(document_id, "skipped", current.chunks)
            record = DocumentRecord(
                id=document_id, status=DocumentStatus.FAILED, source=source, error=reason,
                updated_at=self._clock(), **self._ordering(marker, current),
            )
            if current and current.status != DocumentStatus.DELETED:
                self._remove(current, record)
            else:
                self._registry.put(record)
            return IndexOutcome(document_id, "failed", 0, reason)

    def delete(self, document_id: str, *, marker: ChangeMarker | None = None) -> IndexOutcome:
        """Remove a document's chunks and leave a tombstone that orders later events.

        Without a marker (an API call) an unknown document is a 404; with one (an S3 event)
        the tombstone is written anyway, so a late, older create cannot resurrect it.
        """
        with self._registry.locked(document_id):
            current = self._registry.get(document_id)
            if marker and current and not marker.is_newer_than(current.sequencer):
                return IndexOutcome(document_id, "skipped", current.chunks)
            live = current is not None and current.status != DocumentStatus.DELETED
            if not live and marker is None:
                raise DocumentNotFound(f"document {document_id!r} not found")
            self._remove(current, DocumentRecord(
                id=document_id, status=DocumentStatus.DELETED,
                title=current.title if current else None,
                source=current.source if current else None,
                updated_at=self._clock(), **self._ordering(marker, current),
            ))
            return IndexOutcome(document_id, "deleted", 0)
