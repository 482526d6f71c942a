"""Apply changes (``domain.Change``) to the index: idempotent, ordered by their markers, never
half-written; one ``Outcome`` per change (docs/architecture.md, "The change pipeline")."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypedDict

from solar_rag.document_ids import check_document_id
from solar_rag.domain import (
    CONTENT_TYPES,
    PENDING_DELETE,
    Change,
    ChangeMarker,
    Chunk,
    DocumentRecord,
    DocumentStatus,
    DocumentWrite,
    EmbeddedChunk,
    EmbeddingKind,
    Outcome,
    ParsedDocument,
    Rejection,
    Removal,
    SourceDocument,
    Upsert,
    WriteResult,
    is_permanent,
    stable_hash,
)
from solar_rag.errors import (
    ConcurrentUpdate,
    DocumentNotFound,
    InvalidInput,
    PayloadTooLarge,
    RagError,
    UnsupportedDocument,
    UpstreamError,
)
from solar_rag.ports import AtomicIndexStore, DocumentRegistry, Embedder, RecordFor, VectorStore
from solar_rag.settings import current_limits

logger = logging.getLogger("solar_rag.indexing")

OUTAGE_AFTER = 2
"""Documents in a row failing a retryable upstream call that end one-by-one embedding."""

MAX_GROUP_CHARS = 200_000
"""Text indexed together (S3 batches, HTTP requests): under a minute of Upstage's 300,000
tokens/min, so each group is written before the next is embedded and a batch of large
documents makes progress within its time instead of losing all of it at once."""


def groups_by_size(changes: Sequence[Change]) -> list[list[int]]:
    """Positions of ``changes`` in consecutive groups of at most ``MAX_GROUP_CHARS`` of text
    to index (a bigger document alone; removals and rejections weigh nothing)."""
    groups: list[list[int]] = []
    size = 0
    for position, change in enumerate(changes):
        text = len(change.document.text) if isinstance(change, Upsert) else 0
        if groups and size + text <= MAX_GROUP_CHARS:
            groups[-1].append(position)
            size += text
        else:
            groups.append([position])
            size = text
    return groups


class ChunkerLike(Protocol):
    def chunk(self, doc: SourceDocument, parsed: ParsedDocument, version: str) -> list[Chunk]: ...


class _OrderingFields(TypedDict):
    sequencer: str | None
    etag: str | None
    version_id: str | None


@dataclass(slots=True)
class _Item:
    """A change in a round: an upsert is chunked, then embedded; ``error``: found before the
    locks, recorded under them; ``recheck``: found with nothing to write before the locks."""

    position: int
    change: Change
    version: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    title: str | None = None
    vectors: list[list[float]] = field(default_factory=list)
    error: RagError | None = None
    recheck: bool = False
    outcome: Outcome | None = None

    @property
    def upsert(self) -> Upsert:
        assert isinstance(self.change, Upsert)
        return self.change

    @property
    def doc(self) -> SourceDocument:
        return self.upsert.document


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chunk_ids(record: DocumentRecord | None) -> list[str]:
    return record.chunk_ids if record else []


def _rounds(changes: Sequence[Change]) -> list[list[int]]:
    """Positions in rounds naming each document once: a document's k-th change is in round
    k, so its changes apply in order while different documents share rounds."""
    rounds: list[list[int]] = []
    seen: Counter[str] = Counter()
    for position, change in enumerate(changes):
        number = seen[change.document_id]
        seen[change.document_id] += 1
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(position)
    return rounds


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
        max_document_chars: int = current_limits().max_document_chars,
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
            raise InvalidInput(f"content_type must be one of {', '.join(CONTENT_TYPES)}, "
                               f"got {doc.content_type!r}")
        if not doc.text.strip():
            raise InvalidInput(f"document {doc.id!r} has no text")
        if len(doc.text) > self._max_document_chars:
            raise PayloadTooLarge(f"document {doc.id!r} has {len(doc.text)} characters; "
                                  f"the limit is {self._max_document_chars}")

    def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """One outcome per change, in order. Upserts are parsed, chunked and embedded together
        outside the locks (shared embedding requests: Upstage allows 100 a minute); then the
        locks are taken in id order (overlapping batches cannot deadlock), each change is
        checked again under its lock (marker, content) and the upserts are written in one
        store call. A change fails alone; a document named twice is changed in order."""
        outcomes: dict[int, Outcome] = {}
        for positions in _rounds(changes):
            for item in self._apply_round([_Item(p, changes[p]) for p in positions]):
                assert item.outcome is not None
                outcomes[item.position] = item.outcome
        return [outcomes[position] for position in range(len(changes))]

    def index(self, doc: SourceDocument, *, marker: ChangeMarker | None = None) -> Outcome:
        """One upsert; its error raised."""
        return self.apply([Upsert(doc, marker)])[0].result()

    def index_many(self, docs: Sequence[SourceDocument]) -> list[Outcome]:
        """Upserts that must all succeed: every document is validated first (an invalid one
        stops the call before any work); after the batch, the first failure is raised (the
        others are indexed and recorded)."""
        for doc in docs:
            self.validate(doc)
        return [outcome.result() for outcome in self.apply([Upsert(doc) for doc in docs])]

    def delete(self, document_id: str, *, marker: ChangeMarker | None = None) -> Outcome:
        """One removal; its error raised (``DocumentNotFound`` for an unknown document)."""
        return self.apply([Removal(document_id, marker)])[0].result()

    def _apply_round(self, items: list[_Item]) -> list[_Item]:
        upserts = [item for item in items if isinstance(item.change, Upsert)]
        for item in upserts:
            self._prepare(item)
        self._embed_isolating([item for item in upserts if item.chunks and item.error is None])
        with ExitStack() as locks:
            held = self._lock([item for item in items if item.outcome is None], locks)
            self._apply_locked(held)
        return items

    def _prepare(self, item: _Item) -> None:
        """Validate, skip (stale event, unchanged content: no side effects), parse and chunk."""
        doc, marker = item.doc, item.upsert.marker
        try:
            self.validate(doc)
        except RagError as error:
            if item.upsert.replaces:
                item.error = error  # a rejection, under the lock
            else:
                item.outcome = Outcome(doc.id, "failed", error=error)  # refused before any work
            return
        item.version = self.content_hash(doc)
        if skipped := self._skip(item.change, item.version, self._registry.get(doc.id)):
            if marker is None:
                item.outcome = skipped
            else:  # the event is recorded under the lock, where it is checked again
                item.recheck = True
            return
        try:
            parsed = self._parse(doc)
            chunks = self._chunker.chunk(doc, parsed, item.version)
            if not chunks:
                raise InvalidInput(f"document {doc.id!r} produced no text to index")
        except RagError as error:
            item.error = error
            return
        item.chunks, item.title = chunks, parsed.title

    @staticmethod
    def _skip(change: Change, version: str, current: DocumentRecord | None) -> Outcome | None:
        """A stale event, or an upsert of the content indexed already: nothing to write."""
        if current and change.marker and not change.marker.is_newer_than(current.sequencer):
            return Outcome(change.document_id, "skipped", current.chunks)
        if (isinstance(change, Upsert) and current and current.status == DocumentStatus.INDEXED
                and current.content_hash == version):
            return Outcome(change.document_id, "unchanged", current.chunks)
        return None

    def _embed_isolating(self, items: Sequence[_Item]) -> None:
        """Embed in shared requests; set each item's vectors or error.

        When a request shared by several documents fails upstream (Upstage refusing or
        crashing on one input), each document is embedded on its own, so one bad document
        fails alone instead of failing its neighbours. After ``OUTAGE_AFTER`` documents in a
        row fail with a retryable error it is an outage, not one document: the rest get the
        error without more requests.
        """
        try:
            self._embed(items)
            return
        except UpstreamError as error:
            shared: RagError = error
            if len(items) < 2:
                items[0].error = error
                return
        except RagError as error:
            for item in items:
                item.error = error
            return
        logger.warning("shared embedding request failed (%s); embedding %d documents one by one",
                       shared.message, len(items))
        in_a_row = 0
        for item in items:
            if in_a_row >= OUTAGE_AFTER:
                item.error = shared
                continue
            try:
                self._embed([item])
                in_a_row = 0
            except RagError as error:
                item.error = shared = error
                in_a_row = in_a_row + 1 if error.retryable else 0

    def _embed(self, items: Sequence[_Item]) -> None:
        """One embedder call for every chunk of every document (it batches by count and tokens)."""
        texts = [embedding_input(chunk) for item in items for chunk in item.chunks]
        vectors = self._embedder.embed(texts, EmbeddingKind.PASSAGE) if texts else []
        offset = 0
        for item in items:
            item.vectors = vectors[offset: offset + len(item.chunks)]
            offset += len(item.chunks)

    def _lock(self, items: Sequence[_Item], locks: ExitStack) -> list[_Item]:
        """Take the items' locks in id order; an item whose lock is busy is deferred."""
        held = []
        for item in sorted(items, key=lambda i: i.change.document_id):
            try:
                locks.enter_context(self._registry.locked(item.change.document_id))
            except RagError as error:
                item.outcome = Outcome(item.change.document_id, "deferred", error=error)
                continue
            held.append(item)
        return held

    def _apply_locked(self, items: Sequence[_Item]) -> None:
        """Apply each change under its lock; the upserts to write go in one store call."""
        to_write: list[tuple[_Item, DocumentRecord | None]] = []
        for item in items:
            change, current = item.change, self._registry.get(item.change.document_id)
            if (skipped := self._skip(change, item.version, current)) is not None:
                item.outcome = self._recorded(change, skipped, current)
            elif isinstance(change, Removal):
                item.outcome = self._remove_document(change, current)
            elif isinstance(change, Rejection):
                item.outcome = self._reject(change.document_id, UnsupportedDocument(change.reason),
                                            change.marker, change.source, current)
            elif item.error is not None:
                item.outcome = self._failed(item, current, item.error)
            elif item.recheck:
                item.outcome = Outcome(change.document_id, "deferred", error=ConcurrentUpdate(
                    f"document {change.document_id!r} changed while it was being indexed; retry later"))
            else:
                to_write.append((item, current))
        if to_write:
            self._write(to_write)

    def _recorded(self, change: Change, skipped: Outcome, current: DocumentRecord | None) -> Outcome:
        """A skipped change; the sequencer of an event that found its content unchanged is
        recorded (it orders later events)."""
        marker = change.marker
        if skipped.status == "skipped":
            logger.info("skipping stale event", extra={"document_id": change.document_id})
        elif current and marker and marker.sequencer:
            self._registry.put(replace(current, sequencer=marker.sequencer,
                                       etag=marker.etag, version_id=marker.version_id))
        return skipped

    def _write(self, to_write: Sequence[tuple[_Item, DocumentRecord | None]]) -> None:
        """Write embedded documents in one store call; the caller holds every lock."""
        writes = [DocumentWrite(item.doc.id, item.version, [
            EmbeddedChunk(c, v) for c, v in zip(item.chunks, item.vectors, strict=True)],
            _chunk_ids(current), item.doc) for item, current in to_write]
        records: list[RecordFor] = [partial(self._indexed_record, item, current)
                                    for item, current in to_write]
        try:
            if self._atomic is not None:
                written = self._atomic.upsert_documents_recorded(writes, records)
            else:
                for item, current in to_write:
                    self._registry.put(self._intent(item.doc.id, current, item.version, item.doc))
                written = self._store.upsert_documents(writes)
        except RagError as error:
            written = [WriteResult(item.doc.id, error=error) for item, _ in to_write]
        for (item, current), record, result in zip(to_write, records, written, strict=True):
            if result.error is not None:
                item.outcome = self._failed(item, current, result.error)
                continue
            if self._atomic is None:
                self._registry.put(record(result.stored_ids))
            logger.info("indexed document",
                        extra={"document_id": item.doc.id, "chunks": len(result.stored_ids)})
            item.outcome = Outcome(item.doc.id, "indexed", len(result.stored_ids))

    def _failed(self, item: _Item, current: DocumentRecord | None, error: RagError) -> Outcome:
        """An upsert that failed: a rejection when its source replaced the old version and
        the failure is its own; otherwise the failure is recorded and what was indexed
        before stays as it was."""
        doc = item.doc
        if item.upsert.replaces and is_permanent(error):
            return self._reject(doc.id, error, item.upsert.marker, doc.source, current)
        base = current or DocumentRecord(id=doc.id, status=DocumentStatus.FAILED, title=doc.title,
                                         source=doc.source, content_type=doc.content_type,
                                         metadata=dict(doc.metadata))
        self._registry.put(replace(base, status=DocumentStatus.FAILED, error=error.message,
                                   updated_at=self._clock(), pending_version=None,
                                   pending_since=None))
        return Outcome(doc.id, "failed", error=error)

    def _reject(self, document_id: str, error: RagError, marker: ChangeMarker | None,
                source: str | None, current: DocumentRecord | None) -> Outcome:
        """Record a document that cannot be indexed at all; its previous chunks are removed
        (the source that replaced them is not searchable)."""
        logger.warning("document cannot be indexed: %s", error.message,
                       extra={"document_id": document_id})
        record = DocumentRecord(
            id=document_id, status=DocumentStatus.FAILED, source=source, error=error.message,
            updated_at=self._clock(), **self._ordering(marker, current),
        )
        if current and current.status != DocumentStatus.DELETED:
            self._remove(current, record)
        else:
            self._registry.put(record)
        return Outcome(document_id, "failed", error=error)

    def _remove_document(self, change: Removal, current: DocumentRecord | None) -> Outcome:
        """Remove a document's chunks and leave a tombstone that orders later events."""
        document_id, marker = change.document_id, change.marker
        if (current is None or current.status == DocumentStatus.DELETED) and marker is None:
            return Outcome(document_id, "failed",
                           error=DocumentNotFound(f"document {document_id!r} not found"))
        self._remove(current, DocumentRecord(
            id=document_id, status=DocumentStatus.DELETED,
            title=current.title if current else None,
            source=current.source if current else None,
            updated_at=self._clock(), **self._ordering(marker, current),
        ))
        return Outcome(document_id, "deleted")

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

    def _indexed_record(self, item: _Item, current: DocumentRecord | None,
                        stored_ids: Sequence[str]) -> DocumentRecord:
        doc = item.doc
        return DocumentRecord(
            id=doc.id, status=DocumentStatus.INDEXED, title=doc.title or item.title,
            source=doc.source, content_type=doc.content_type, chunks=len(stored_ids),
            content_hash=item.version, metadata=dict(doc.metadata), indexed_at=self._clock(),
            updated_at=self._clock(), error=None,
            **self._ordering(item.upsert.marker, current),
            chunk_ids=list(stored_ids),
        )

    @staticmethod
    def _ordering(marker: ChangeMarker | None, current: DocumentRecord | None) -> _OrderingFields:
        """What a new record says about the event it applies: the newest sequencer seen, and
        the S3 object version (none for API calls)."""
        sequencer = marker.sequencer if marker and marker.sequencer else (
            current.sequencer if current else None)
        return {"sequencer": sequencer, "etag": marker.etag if marker else None,
                "version_id": marker.version_id if marker else None}
