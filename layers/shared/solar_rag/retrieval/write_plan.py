"""Shared pieces of ``VectorStore.upsert_documents`` for the store adapters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from solar_rag.domain import DocumentWrite, EmbeddedChunk, WriteResult
from solar_rag.errors import InvalidInput, RagError


class UpsertOne(Protocol):
    def __call__(self, document_id: str, version: str, chunks: Sequence[EmbeddedChunk], *,
                 previous_chunk_ids: Sequence[str] = ()) -> list[str]: ...


def require_unique_documents(writes: Sequence[DocumentWrite]) -> None:
    """Two versions of one document in one call would race each other's stale sweep."""
    seen: set[str] = set()
    for write in writes:
        if write.document_id in seen:
            raise InvalidInput(
                f"document {write.document_id!r} appears twice in one batch write"
            )
        seen.add(write.document_id)


def upsert_each(upsert_document: UpsertOne, writes: Sequence[DocumentWrite]) -> list[WriteResult]:
    """For stores with no fixed cost per write: one ``upsert_document`` per document, each
    document's failure kept in its own result."""
    require_unique_documents(writes)
    results: list[WriteResult] = []
    for write in writes:
        try:
            stored = upsert_document(write.document_id, write.version, write.chunks,
                                     previous_chunk_ids=write.previous_chunk_ids)
        except RagError as error:
            results.append(WriteResult(write.document_id, error=error))
        else:
            results.append(WriteResult(write.document_id, stored))
    return results
