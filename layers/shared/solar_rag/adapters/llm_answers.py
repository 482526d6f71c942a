"""Answer generation with an LLM (Solar), followed by the citation post-check."""

from __future__ import annotations

from collections.abc import Sequence

from solar_rag.domain import Answer, ChatMessage, SearchHit
from solar_rag.ports import ChatModel
from solar_rag.services.citations import check_citations
from solar_rag.services.prompt import build_messages


class LlmAnswerGenerator:
    def __init__(self, chat_model: ChatModel, *, max_tokens: int | None = None) -> None:
        self._chat_model = chat_model
        self._max_tokens = max_tokens

    def generate(
        self,
        question: str,
        hits: Sequence[SearchHit],
        *,
        history: Sequence[ChatMessage] = (),
        temperature: float | None = None,
    ) -> Answer:
        completion = self._chat_model.complete(
            build_messages(question, hits, history),
            temperature=temperature,
            max_tokens=self._max_tokens,
        )
        text, citations = check_citations(completion.text, hits)
        return Answer(text=text, citations=citations, model=completion.model,
                      usage=completion.usage)
