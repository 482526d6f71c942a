"""In-memory fakes of the ports, for fast service and API unit tests."""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from solar_rag.domain import (
    ChatCompletion,
    ChatMessage,
    DocumentRecord,
    DocumentStatus,
    DocumentWrite,
    EmbeddedChunk,
    EmbeddingKind,
    SearchHit,
    SearchMode,
    SearchQuery,
    Usage,
    WriteResult,
    matches_filters,
)
from solar_rag.errors import ConcurrentUpdate, DocumentNotFound, PayloadTooLarge, RagError
from solar_rag.paging import decode_cursor, encode_cursor
from solar_rag.ports import PresignedUpload
from solar_rag.retrieval.write_plan import upsert_each


def bag_of_words_vector(text: str, dimensions: int = 64) -> list[float]:
    vector = [0.0] * dimensions
    for word in text.lower().split():
        digest = hashlib.blake2b(word.strip(".,!?").encode(), digest_size=4).digest()
        vector[int.from_bytes(digest) % dimensions] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


@dataclass
class FakeEmbedder:
    dimensions: int = 64
    space: str = "fake:bow:64"
    calls: list[tuple[EmbeddingKind, list[str]]] = field(default_factory=list)
    fail_with: RagError | None = None

    def model_for(self, kind: EmbeddingKind) -> str:
        return f"fake-{kind.value}"

    def embed(self, texts: Sequence[str], kind: EmbeddingKind) -> list[list[float]]:
        if self.fail_with:
            raise self.fail_with
        self.calls.append((kind, list(texts)))
        return [bag_of_words_vector(t, self.dimensions) for t in texts]


@dataclass
class FakeChatModel:
    reply: str = "It is blue [1]."
    model: str = "fake-solar"
    received: list[list[ChatMessage]] = field(default_factory=list)

    def complete(self, messages: Sequence[ChatMessage], *, temperature: float | None = None,
                 max_tokens: int | None = None) -> ChatCompletion:
        self.received.append(list(messages))
        return ChatCompletion(self.reply, self.model, Usage(10, 5, 15))


class MemoryStore:
    kind = "memory"

    def __init__(self) -> None:
        self.chunks: dict[str, EmbeddedChunk] = {}
        self.fail_upsert_with: RagError | None = None
        """Raised by every write: a failure of the whole request."""
        self.reject_documents: dict[str, RagError] = {}
        """Per document: ``upsert_documents`` reports this error in the document's result."""
        self.upserts = 0
        self.batch_sizes: list[int] = []

    def upsert_document(self, document_id: str, version: str, chunks: Sequence[EmbeddedChunk], *,
                        previous_chunk_ids: Sequence[str] = ()) -> list[str]:
        if self.fail_upsert_with:
            raise self.fail_upsert_with
        self.upserts += 1
        for item in chunks:
            self.chunks[item.chunk.chunk_id] = item
        for chunk_id in [k for k, v in self.chunks.items()
                         if v.chunk.document_id == document_id and v.chunk.version != version]:
            del self.chunks[chunk_id]
        return [c.chunk.chunk_id for c in chunks]

    def upsert_documents(self, writes: Sequence[DocumentWrite]) -> list[WriteResult]:
        if self.fail_upsert_with:
            raise self.fail_upsert_with
        self.batch_sizes.append(len(writes))
        return upsert_each(self._upsert_unless_rejected, writes)

    def _upsert_unless_rejected(self, document_id: str, version: str,
                                chunks: Sequence[EmbeddedChunk], *,
                                previous_chunk_ids: Sequence[str] = ()) -> list[str]:
        rejected = self.reject_documents.get(document_id)
        if rejected:
            raise rejected
        return self.upsert_document(document_id, version, chunks,
                                    previous_chunk_ids=previous_chunk_ids)

    def delete_document(self, document_id: str, *, chunk_ids: Sequence[str] = ()) -> int:
        doomed = [k for k, v in self.chunks.items() if v.chunk.document_id == document_id]
        for key in doomed:
            del self.chunks[key]
        return len(doomed)

    def search(self, query: SearchQuery) -> list[SearchHit]:
        hits = []
        words = set(query.text.lower().split())
        for item in self.chunks.values():
            chunk = item.chunk
            if not matches_filters(chunk.metadata, chunk.document_id, query.filters):
                continue
            if query.mode is SearchMode.KEYWORD or query.vector is None:
                score = float(len(words & set(chunk.text.lower().split())))
            else:
                score = sum(a * b for a, b in zip(item.vector, query.vector, strict=True))
            if score > 0:
                hits.append(SearchHit(chunk, score))
        hits.sort(key=lambda h: -h.score)
        return hits[: query.top_k]

    def document_ids(self) -> set[str]:
        return {v.chunk.document_id for v in self.chunks.values()}


class MemoryRegistry:
    def __init__(self) -> None:
        self.records: dict[str, DocumentRecord] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, document_id: str) -> DocumentRecord | None:
        record = self.records.get(document_id)
        return replace(record) if record else None

    def put(self, record: DocumentRecord) -> None:
        self.records[record.id] = replace(record)

    def list(self, *, limit: int, cursor: str | None = None
             ) -> tuple[list[DocumentRecord], str | None]:
        live = sorted((r for r in self.records.values() if r.status != DocumentStatus.DELETED),
                      key=lambda r: r.id)
        if cursor:
            after = decode_cursor(cursor)
            live = [r for r in live if r.id > after]
        page = live[:limit]
        return page, (encode_cursor(page[-1].id) if len(live) > limit else None)

    @contextmanager
    def locked(self, document_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(document_id, threading.Lock())
        if not lock.acquire(timeout=2):
            raise ConcurrentUpdate(f"document {document_id!r} is being updated")
        try:
            yield
        finally:
            lock.release()


@dataclass
class MemoryBucket:
    """The documents bucket (``ObjectStore``) over a dict: key -> bytes; reads and HEADs
    are recorded."""

    objects: dict[str, bytes] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)

    def read(self, key: str, *, max_bytes: int) -> tuple[bytes, dict[str, str]]:
        self.reads.append(key)
        if key not in self.objects:
            raise DocumentNotFound(f"object {key!r} not found")
        data = self.objects[key]
        if len(data) > max_bytes:
            raise PayloadTooLarge(f"object {key!r} is larger than {max_bytes} bytes")
        return data, {"etag": f"etag-{len(data)}", "content_type": "application/octet-stream"}

    def read_optional(self, key: str, *, max_bytes: int) -> bytes | None:
        try:
            return self.read(key, max_bytes=max_bytes)[0]
        except DocumentNotFound:
            return None

    def exists(self, key: str) -> bool:
        self.heads.append(key)
        return key in self.objects

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        self.objects[key] = data

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def presign_upload(self, key: str, *, max_bytes: int, expires_in: int,
                       content_type: str | None = None) -> PresignedUpload:
        return PresignedUpload(f"https://bucket.example/{key}", {"key": key}, expires_in, 1, max_bytes)
