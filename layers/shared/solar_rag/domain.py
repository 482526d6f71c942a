"""Domain types shared by services, ports and adapters. Plain data, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from solar_rag.errors import NotConfigured, RagError
from solar_rag.parsing.content_types import TEXT_CONTENT_TYPES

MetadataValue = str | int | float | bool
Metadata = dict[str, MetadataValue]
FilterValue = MetadataValue | list[MetadataValue]
Filters = dict[str, FilterValue]

Role = Literal["system", "user", "assistant"]
CONTENT_TYPES = TEXT_CONTENT_TYPES


class EmbeddingKind(StrEnum):
    QUERY = "query"
    PASSAGE = "passage"


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    VECTOR = "vector"
    KEYWORD = "keyword"


class DocumentStatus(StrEnum):
    QUEUED = "queued"
    INDEXING = "indexing"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A document as submitted (HTTP body, file, S3 object), before parsing."""

    id: str
    text: str
    title: str | None = None
    content_type: str = "text/plain"
    source: str | None = None
    metadata: Metadata = field(default_factory=dict)
    parsed: ParsedDocument | None = None
    """The structure a file reader already found (pages, headings: a PDF, Document Parse);
    ``text`` is then ``parsed.text`` and ``parse_document`` returns it as it is."""


@dataclass(frozen=True, slots=True)
class PageStart:
    """Page ``page`` (1-based, as printed by the source) begins at ``start`` in the text."""

    start: int
    page: int


@dataclass(frozen=True, slots=True)
class LayoutElement:
    """One element of a document's layout as Upstage Document Parse reads it: a heading,
    paragraph, table (``text`` in Markdown or HTML), figure ..., on page ``page``."""

    category: str
    page: int
    text: str


@dataclass(frozen=True, slots=True)
class Section:
    """A heading-delimited part of a parsed document; ``start`` is its offset in the text."""

    heading: str | None
    text: str
    start: int


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str | None
    text: str
    sections: tuple[Section, ...]
    pages: tuple[PageStart, ...] = ()
    """Ascending ``start``s; empty for documents without pages."""


@dataclass(frozen=True, slots=True)
class Chunk:
    document_id: str
    chunk_id: str
    index: int
    text: str
    title: str | None
    section: str | None
    start: int
    end: int
    version: str
    source: str | None = None
    metadata: Metadata = field(default_factory=dict)
    page: int | None = None
    """The page the chunk starts on (None: the document has no pages)."""
    page_end: int | None = None
    """The page it ends on, when that is another one."""


@dataclass(frozen=True, slots=True)
class EmbeddedChunk:
    chunk: Chunk
    vector: list[float]


@dataclass(frozen=True, slots=True)
class DocumentWrite:
    """One document's new version for ``VectorStore.upsert_documents``."""

    document_id: str
    version: str
    chunks: Sequence[EmbeddedChunk]
    previous_chunk_ids: Sequence[str] = ()
    source: SourceDocument | None = None
    """The document as submitted: a store that keeps it (the local one) can index it again
    (`rag reindex`)."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What became of one ``DocumentWrite``: the stored chunk ids, or why it was not written
    (its previous version is then still in place)."""

    document_id: str
    stored_ids: list[str] = field(default_factory=list)
    error: RagError | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str
    vector: list[float] | None
    mode: SearchMode = SearchMode.HYBRID
    top_k: int = 5
    filters: Filters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A retrieved chunk.

    ``score`` is cosine similarity for vector search, the BM25 score for keyword search and
    the fused score for hybrid search: comparable within one response, not across modes.
    """

    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass(frozen=True, slots=True)
class ChatCompletion:
    text: str
    model: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class Citation:
    index: int
    hit: SearchHit


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    model: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class ChangeMarker:
    """Where an index/delete request came from, for ordering at-least-once S3 events.

    ``sequencer`` is S3's per-key ordering token (hex, compared after left-padding).
    """

    sequencer: str | None = None
    etag: str | None = None
    version_id: str | None = None

    def is_newer_than(self, other: str | None) -> bool:
        if self.sequencer is None or other is None:
            return True
        width = max(len(self.sequencer), len(other))
        return self.sequencer.upper().rjust(width, "0") > other.upper().rjust(width, "0")


@dataclass(slots=True)
class DocumentRecord:
    """The registry's view of a document: what is indexed and why not."""

    id: str
    status: DocumentStatus
    title: str | None = None
    source: str | None = None
    content_type: str = "text/plain"
    chunks: int = 0
    content_hash: str | None = None
    metadata: Metadata = field(default_factory=dict)
    indexed_at: datetime | None = None
    updated_at: datetime | None = None
    error: str | None = None
    sequencer: str | None = None
    etag: str | None = None
    version_id: str | None = None
    chunk_ids: list[str] = field(default_factory=list)
    pending_version: str | None = None
    """While ``status`` is ``indexing``: the version being written (``PENDING_DELETE`` for a
    removal). Every other field describes the acknowledged version (see docs/reliability.md)."""
    pending_since: datetime | None = None


PENDING_DELETE = "-"
"""``DocumentRecord.pending_version`` of a removal in progress."""


def stable_hash(*parts: object) -> str:
    """SHA-256 over a canonical JSON encoding of ``parts`` (hex)."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def chunk_id_for(document_id: str, version: str, index: int) -> str:
    """Deterministic chunk id: stable for a document version, new for a new version."""
    doc = hashlib.sha256(document_id.encode("utf-8")).hexdigest()[:20]
    return f"{doc}-{version[:16]}-{index:05d}"


def matches_filters(metadata: Mapping[str, MetadataValue], document_id: str,
                    filters: Mapping[str, FilterValue]) -> bool:
    """Reference semantics of metadata filters: every key must match; a list means any-of.

    The key ``document_id`` filters on the document id. Stores implement the same semantics
    natively; this function is the specification they are tested against.
    """
    for key, wanted in filters.items():
        actual: MetadataValue | None = document_id if key == "document_id" else metadata.get(key)
        if actual is None:
            return False
        options: Sequence[MetadataValue] = wanted if isinstance(wanted, list) else [wanted]
        if not any(_same_value(actual, option) for option in options):
            return False
    return True


def _same_value(actual: MetadataValue, wanted: MetadataValue) -> bool:
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual == wanted
    return actual == wanted


# --- the change pipeline (services/indexing.py; docs/architecture.md, "The change pipeline") ---

@dataclass(frozen=True, slots=True)
class Upsert:
    """Index ``document``: its new version replaces the old one's chunks.

    ``replaces``: the document's source now holds this content only (an S3 object, a file).
    When it cannot be indexed for a reason of its own, the old version is removed and the
    document recorded ``failed`` (as a ``Rejection``); without it (an HTTP request) the old
    version stays searchable and the failure is recorded beside it.
    """

    document: SourceDocument
    marker: ChangeMarker | None = None
    replaces: bool = False

    @property
    def document_id(self) -> str:
        return self.document.id


@dataclass(frozen=True, slots=True)
class Removal:
    """Remove a document's chunks and leave a tombstone. Without a marker (an API call) an
    unknown document is ``DocumentNotFound``; with one the tombstone is written anyway, so
    a late, older creation cannot resurrect it."""

    document_id: str
    marker: ChangeMarker | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A document whose source cannot be indexed at all (unsupported type, too big,
    unreadable): its old chunks are removed and it is recorded ``failed`` with ``reason``."""

    document_id: str
    reason: str
    marker: ChangeMarker | None = None
    source: str | None = None


Change = Upsert | Removal | Rejection

OutcomeStatus = Literal["indexed", "unchanged", "queued", "deleted", "skipped", "failed",
                        "deferred"]
"""``failed``: the change failed with ``error`` (recorded in the registry, except a document
refused before any work). ``deferred``: nothing was applied or recorded; the change must come
again later (``error`` says why): an SQS batch item failure at the edge."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one change: a status and, for ``failed`` and ``deferred``, the error."""

    id: str
    status: OutcomeStatus
    chunks: int = 0
    error: Exception | None = None

    def __post_init__(self) -> None:
        if (self.error is not None) != (self.status in ("failed", "deferred")):
            raise ValueError(f"a {self.status!r} outcome {'needs' if self.error is None else 'has no'} error")

    @property
    def settled(self) -> bool:
        """Whether the change is done with: it succeeded, or failed for a reason of the
        document's own that no retry can fix. Otherwise (deferred; upstream, store, busy
        lock, configuration, an unforeseen error) it must come again."""
        return self.status != "deferred" and (self.error is None or is_permanent(self.error))

    def result(self) -> Outcome:
        """This outcome, or its error raised (for callers that want an exception)."""
        if self.error is not None:
            raise self.error
        return self


def is_permanent(error: BaseException) -> bool:
    """A failure that is the document's own: retrying the same change fails the same way.
    Configuration problems (``NotConfigured``) are not: the change waits for a redrive."""
    return isinstance(error, RagError) and not error.retryable and not isinstance(error, NotConfigured)
