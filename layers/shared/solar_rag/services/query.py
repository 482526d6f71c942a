"""Question answering: retrieve, then answer from the retrieved chunks with citations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

from solar_rag.domain import Answer, ChatMessage, Filters, SearchHit, SearchMode, Usage
from solar_rag.ports import AnswerGenerator
from solar_rag.services.prompt import NOT_FOUND_ANSWER
from solar_rag.services.search import SearchService


class AskOptions(TypedDict, total=False):
    """How a question is answered, in one piece (``QueryService.ask``) or streamed
    (``StreamingAnswers.ask``); the defaults are :meth:`QueryService.prepare`'s, so both
    answer alike."""

    top_k: int
    mode: SearchMode
    filters: Filters | None
    history: Sequence[ChatMessage]
    temperature: float | None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A question with its retrieved sources, ready to be answered."""

    question: str
    hits: tuple[SearchHit, ...]
    history: Sequence[ChatMessage]
    temperature: float | None


class QueryService:
    def __init__(self, *, search: SearchService, generator: AnswerGenerator, model: str) -> None:
        self._search = search
        self._generator = generator
        self._model = model

    def ask(self, question: str, **options: Unpack[AskOptions]) -> Answer:
        return self.answer(self.prepare(question, **options))

    def prepare(
        self,
        question: str,
        *,
        top_k: int = 5,
        mode: SearchMode = SearchMode.HYBRID,
        filters: Filters | None = None,
        history: Sequence[ChatMessage] = (),
        temperature: float | None = None,
    ) -> Prepared:
        hits = tuple(self._search.search(question, top_k=top_k, mode=mode, filters=filters))
        return Prepared(question.strip(), hits, history, temperature)

    def answer(self, prepared: Prepared) -> Answer:
        """The answer in one piece."""
        if not prepared.hits:
            # Nothing retrieved: no model call, no citations, no invented sources.
            return Answer(NOT_FOUND_ANSWER, (), self._model, Usage())
        return self._generator.generate(prepared.question, prepared.hits,
                                        history=prepared.history, temperature=prepared.temperature)
