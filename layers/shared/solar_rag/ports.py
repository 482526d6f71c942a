"""Ports: the small interfaces services depend on. Adapters implement them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from solar_rag.domain import (
    Answer,
    ChatCompletion,
    ChatMessage,
    DocumentRecord,
    DocumentWrite,
    EmbeddedChunk,
    EmbeddingKind,
    LayoutElement,
    SearchHit,
    SearchQuery,
    WriteResult,
)


class ChatModel(Protocol):
    """An LLM that completes a conversation."""

    @property
    def model(self) -> str: ...

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatCompletion: ...


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of ``dimensions`` floats.

    Implementations batch internally (count and token budget) and respect rate limits.
    """

    @property
    def dimensions(self) -> int: ...

    @property
    def space(self) -> str:
        """Identifies the vector space (provider + passage model + dimensions).

        Vectors from different spaces must never be mixed in one index.
        """
        ...

    def model_for(self, kind: EmbeddingKind) -> str: ...

    def embed(self, texts: Sequence[str], kind: EmbeddingKind) -> list[list[float]]: ...


class AnswerGenerator(Protocol):
    """Writes an answer to a question from numbered context chunks.

    ``hits[i]`` is source ``[i+1]``; the answer may cite only those numbers.
    """

    def generate(
        self,
        question: str,
        hits: Sequence[SearchHit],
        *,
        history: Sequence[ChatMessage] = (),
        temperature: float | None = None,
    ) -> Answer: ...


class VectorStore(Protocol):
    """Chunks with their vectors, searchable by vector, keyword or both."""

    @property
    def kind(self) -> str:
        """``local`` or ``opensearch`` (reported by /v1/health)."""
        ...

    def upsert_document(
        self,
        document_id: str,
        version: str,
        chunks: Sequence[EmbeddedChunk],
        *,
        previous_chunk_ids: Sequence[str] = (),
    ) -> list[str]:
        """Write all of a version's chunks, then remove every older chunk of the document.

        Old chunks are removed only after every new one is written: a failure leaves the old
        version searchable, never a half-deleted document. Returns the stored chunk ids (the
        store's own ids where the target assigns them). ``previous_chunk_ids`` are the ids
        recorded for the old version, for targets that cannot delete by query.
        """
        ...

    def upsert_documents(self, writes: Sequence[DocumentWrite]) -> list[WriteResult]:
        """``upsert_document`` for several documents, one result per write, in order.

        Each document keeps ``upsert_document``'s guarantee on its own: one whose chunks are
        rejected keeps its previous version and its result carries the error, while the others
        are written. Failures of the whole request (connection, missing index) raise. Stores
        that pay a fixed cost per write (refresh, stale-chunk sweep) pay it once per call.
        """
        ...

    def delete_document(self, document_id: str, *, chunk_ids: Sequence[str] = ()) -> int:
        """Remove every chunk of the document; returns how many were removed (if known)."""
        ...

    def search(self, query: SearchQuery) -> list[SearchHit]: ...


class DocumentRegistry(Protocol):
    """What is indexed: status, content hash, chunk count, ordering markers, errors."""

    def get(self, document_id: str) -> DocumentRecord | None: ...

    def put(self, record: DocumentRecord) -> None: ...

    def list(self, *, limit: int, cursor: str | None = None) -> tuple[list[DocumentRecord], str | None]:
        """Live documents (not ``deleted``) in id order; returns the page and the next cursor."""
        ...

    def locked(self, document_id: str) -> AbstractContextManager[None]:
        """Exclusive section for one document, across processes.

        Raises ``ConcurrentUpdate`` when the lock cannot be taken in reasonable time.
        """
        ...


RecordFor = Callable[[list[str]], DocumentRecord]
"""Builds a document's registry record from the chunk ids the store wrote."""


@runtime_checkable
class AtomicIndexStore(Protocol):
    """A store that commits registry records in the same transaction as the chunks (the local
    store, when the registry lives in the same file): a crash leaves a document's old version
    or its new one, chunks and record alike, never a mixture."""

    def shares_transactions_with(self, registry: DocumentRegistry) -> bool: ...

    def upsert_documents_recorded(self, writes: Sequence[DocumentWrite],
                                  records: Sequence[RecordFor]) -> list[WriteResult]:
        """``upsert_documents``, each document's record (``records[i]`` of its stored ids)
        committed with its chunks; a failed document writes neither."""
        ...

    def delete_document_recorded(self, record: DocumentRecord) -> int:
        """Remove every chunk of ``record.id`` and store ``record``, in one transaction."""
        ...


@runtime_checkable
class StoreInventory(Protocol):
    """What a store holds per document and version, for consistency checks (`rag doctor`)."""

    def document_versions(self, document_id: str | None = None) -> dict[str, dict[str, int]]:
        """Chunk counts by document id, then version: of every document, or of one."""
        ...

    def remove_versions(self, document_id: str, *, keep: str | None) -> int:
        """Remove the document's chunks of every version except ``keep`` (all when None)."""
        ...


class ObjectSource(Protocol):
    """Reads documents from object storage (S3)."""

    def read(self, key: str, *, max_bytes: int) -> tuple[bytes, dict[str, str]]:
        """Object bytes and its attributes (``etag``, ``version_id``, ``content_type``)."""
        ...

    def read_optional(self, key: str, *, max_bytes: int) -> bytes | None: ...

    def exists(self, key: str) -> bool:
        """Whether the object exists now (a HEAD: nothing is downloaded)."""
        ...


@dataclass(frozen=True, slots=True)
class PresignedUpload:
    """An HTML-form style upload (``POST url`` with ``fields`` then the file) that S3 accepts
    until ``expires_in`` seconds from now, for objects of ``min_bytes``..``max_bytes``."""

    url: str
    fields: dict[str, str]
    expires_in: int
    min_bytes: int
    max_bytes: int


class ObjectStore(ObjectSource, Protocol):
    """The documents bucket: read, and also write (queued documents, sidecars), delete and
    presign uploads."""

    def put(self, key: str, data: bytes, *, content_type: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def presign_upload(self, key: str, *, max_bytes: int, expires_in: int,
                       content_type: str | None = None) -> PresignedUpload: ...


class SecretSource(Protocol):
    def get(self, name: str) -> str: ...


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """A piece of an answer being generated."""

    text: str


ChatStreamPart = ChatDelta | ChatCompletion
"""A streamed completion: ``ChatDelta`` pieces, then one ``ChatCompletion`` with the whole
text, the model that served it and the usage."""


class StreamingChatModel(Protocol):
    """An LLM that streams its answer.

    ``stream`` connects (with retries) before it returns, so that failing to start raises
    there; errors while reading the stream are raised by the iterator.
    """

    @property
    def model(self) -> str: ...

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[ChatStreamPart]: ...


class DocumentParser(Protocol):
    """Reads a file's layout (Upstage Document Parse): its elements in reading order, each
    with its page and category, tables as tables. ``pages`` is the page count when known
    (it chooses between a synchronous and an asynchronous parse); ``force_ocr`` for a scan
    (a PDF without a text layer). Raises ``RagError``s:
    per-document ones (``UnsupportedDocument``, ``PayloadTooLarge``) for files it refuses or
    cannot read, retryable ones for an outage or a parse still running."""

    def parse(self, data: bytes, filename: str, *, pages: int | None = None,
              force_ocr: bool = False) -> Sequence[LayoutElement]: ...
