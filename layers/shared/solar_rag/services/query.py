"""Question answering: retrieve, then answer from the retrieved chunks with citations."""

from __future__ import annotations

from collections.abc import Sequence

from solar_rag.domain import Answer, ChatMessage, Filters, SearchMode, Usage
from solar_rag.ports import AnswerGenerator
from solar_rag.services.prompt import NOT_FOUND_ANSWER
from solar_rag.services.search import SearchService


class QueryService:
    def __init__(self, *, search: SearchService, generator: AnswerGenerator, model: str) -> None:
        self._search = search
        self._generator = generator
        self._model = model

    def ask(
        self,
        question: str,
        *,
        top_k: int = 5,
        mode: SearchMode = SearchMode.HYBRID,
        filters: Filters | None = None,
        history: Sequence[ChatMessage] = (),
        temperature: float | None = None,
    ) -> Answer:
        hits = self._search.search(question, top_k=top_k, mode=mode, filters=filters)
        if not hits:
            # Nothing retrieved: no model call, no citations, no invented sources.
            return Answer(NOT_FOUND_ANSWER, (), self._model, Usage())
        return self._generator.generate(
            question.strip(), hits, history=history, temperature=temperature
        )
