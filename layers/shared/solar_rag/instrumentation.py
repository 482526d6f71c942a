"""Port decorators that time each stage and count tokens and chunks (CloudWatch metrics).

The services stay pure: the composition root wraps the ports it hands them when it is built
with ``instrumented=True`` (the Lambda functions).
"""

from __future__ import annotations

from collections.abc import Sequence

from solar_rag import observability
from solar_rag.domain import (
    Answer,
    ChatCompletion,
    ChatMessage,
    DocumentWrite,
    EmbeddedChunk,
    EmbeddingKind,
    SearchHit,
    SearchQuery,
    WriteResult,
)
from solar_rag.ports import AnswerGenerator, ChatModel, Embedder, VectorStore


class TimedEmbedder:
    def __init__(self, inner: Embedder) -> None:
        self.inner = inner

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def space(self) -> str:
        return self.inner.space

    def model_for(self, kind: EmbeddingKind) -> str:
        return self.inner.model_for(kind)

    def embed(self, texts: Sequence[str], kind: EmbeddingKind) -> list[list[float]]:
        with observability.stage("embed"):
            return self.inner.embed(texts, kind)


class TimedStore:
    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner

    @property
    def kind(self) -> str:
        return self.inner.kind

    def upsert_document(self, document_id: str, version: str, chunks: Sequence[EmbeddedChunk], *,
                        previous_chunk_ids: Sequence[str] = ()) -> list[str]:
        with observability.stage("upsert"):
            stored = self.inner.upsert_document(document_id, version, chunks,
                                                previous_chunk_ids=previous_chunk_ids)
        observability.record_chunks_indexed(len(stored))
        return stored

    def upsert_documents(self, writes: Sequence[DocumentWrite]) -> list[WriteResult]:
        with observability.stage("upsert"):
            results = self.inner.upsert_documents(writes)
        observability.record_chunks_indexed(sum(len(r.stored_ids) for r in results))
        return results

    def delete_document(self, document_id: str, *, chunk_ids: Sequence[str] = ()) -> int:
        return self.inner.delete_document(document_id, chunk_ids=chunk_ids)

    def search(self, query: SearchQuery) -> list[SearchHit]:
        with observability.stage("retrieve"):
            return self.inner.search(query)


class TimedChatModel:
    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner

    @property
    def model(self) -> str:
        return self.inner.model

    def complete(self, messages: Sequence[ChatMessage], *, temperature: float | None = None,
                 max_tokens: int | None = None) -> ChatCompletion:
        with observability.stage("generate"):
            completion = self.inner.complete(messages, temperature=temperature, max_tokens=max_tokens)
        observability.record_tokens(completion.usage)
        return completion


class TimedAnswerGenerator:
    """For the offline generator only: the LLM generator is timed through its chat model."""

    def __init__(self, inner: AnswerGenerator) -> None:
        self.inner = inner

    def generate(self, question: str, hits: Sequence[SearchHit], *,
                 history: Sequence[ChatMessage] = (), temperature: float | None = None) -> Answer:
        with observability.stage("generate"):
            return self.inner.generate(question, hits, history=history, temperature=temperature)
