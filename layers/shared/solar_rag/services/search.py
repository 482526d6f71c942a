"""Search: embed the question (unless keyword-only) and retrieve from the store."""

from __future__ import annotations

from solar_rag.domain import EmbeddingKind, Filters, SearchHit, SearchMode, SearchQuery
from solar_rag.errors import InvalidInput
from solar_rag.ports import Embedder, VectorStore


class SearchService:
    def __init__(self, *, embedder: Embedder, store: VectorStore, max_query_chars: int,
                 max_top_k: int) -> None:
        self._embedder = embedder
        self._store = store
        self._max_query_chars = max_query_chars
        self._max_top_k = max_top_k

    def search(
        self,
        text: str,
        *,
        top_k: int = 5,
        mode: SearchMode = SearchMode.HYBRID,
        filters: Filters | None = None,
    ) -> list[SearchHit]:
        query = text.strip()
        if not query:
            raise InvalidInput("query must not be empty")
        if len(query) > self._max_query_chars:
            raise InvalidInput(f"query is longer than {self._max_query_chars} characters")
        if not 1 <= top_k <= self._max_top_k:
            raise InvalidInput(f"top_k must be between 1 and {self._max_top_k}")
        vector = None
        if mode is not SearchMode.KEYWORD:
            vector = self._embedder.embed([query], EmbeddingKind.QUERY)[0]
        return self._store.search(
            SearchQuery(text=query, vector=vector, mode=mode, top_k=top_k, filters=filters or {})
        )
