"""Answers as they are written: retrieved sources first, then the answer in pieces, then the
checked answer.

Each method does the work that can fail cleanly before it returns (validation, retrieval,
connecting to the model), so the caller can still answer those failures with an HTTP status;
the events it returns are produced while the model writes, and a failure while reading them
is raised by the iterator (the API turns it into an ``error`` event).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Unpack

from solar_rag.domain import Answer, ChatCompletion, ChatMessage, SearchHit
from solar_rag.errors import NotConfigured
from solar_rag.ports import ChatDelta, ChatModel, ChatStreamPart, StreamingChatModel
from solar_rag.services.chat import validate_messages
from solar_rag.services.citations import check_citations
from solar_rag.services.prompt import build_messages
from solar_rag.services.query import AskOptions, QueryService


@dataclass(frozen=True, slots=True)
class Sources:
    """The retrieved chunks; ``hits[i]`` is source ``[i+1]``."""

    hits: tuple[SearchHit, ...]


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The whole answer after the citation post-check (markers naming no source removed)."""

    answer: Answer


StreamEvent = Sources | Delta | Done


class StreamingAnswers:
    def __init__(
        self,
        *,
        query: QueryService,
        chat_model: StreamingChatModel | None,
        max_tokens: int | None,
        max_chat_chars: int,
        max_messages: int,
    ) -> None:
        """``chat_model`` is ``None`` without a language model (offline provider): questions
        are then answered by ``query`` in one piece, and chat is not available."""
        self._query = query
        self._chat_model = chat_model
        self._max_tokens = max_tokens
        self._max_chat_chars = max_chat_chars
        self._max_messages = max_messages

    def ask(self, question: str, **options: Unpack[AskOptions]) -> Iterator[StreamEvent]:
        prepared = self._query.prepare(question, **options)
        if not prepared.hits or self._chat_model is None:
            answer = self._query.answer(prepared)
            return iter((Sources(prepared.hits), Delta(answer.text), Done(answer)))
        parts = self._chat_model.stream(
            build_messages(prepared.question, prepared.hits, prepared.history),
            temperature=prepared.temperature, max_tokens=self._max_tokens)
        return _answer_events(prepared.hits, parts)

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[StreamEvent]:
        if self._chat_model is None:
            raise NotConfigured(
                "chat needs a language model: set UPSTAGE_API_KEY (the offline provider only "
                "answers questions about indexed documents, by quoting them)")
        validate_messages(messages, max_chars=self._max_chat_chars, max_messages=self._max_messages)
        parts = self._chat_model.stream(messages, temperature=temperature, max_tokens=max_tokens)
        return _chat_events(parts)


def _answer_events(hits: tuple[SearchHit, ...], parts: Iterator[ChatStreamPart]) -> Iterator[StreamEvent]:
    yield Sources(hits)
    for part in parts:
        if isinstance(part, ChatDelta):
            yield Delta(part.text)
        else:
            text, citations = check_citations(part.text, hits)
            yield Done(Answer(text, citations, part.model, part.usage))


def _chat_events(parts: Iterator[ChatStreamPart]) -> Iterator[StreamEvent]:
    for part in parts:
        if isinstance(part, ChatDelta):
            yield Delta(part.text)
        else:
            yield Done(_as_answer(part))


def _as_answer(completion: ChatCompletion) -> Answer:
    return Answer(completion.text, (), completion.model, completion.usage)


class OnePieceStreamingChatModel:
    """A ``ChatModel`` as a ``StreamingChatModel``: the whole answer as one piece (models that
    cannot stream, e.g. test doubles)."""

    def __init__(self, inner: ChatModel) -> None:
        self._inner = inner

    @property
    def model(self) -> str:
        return self._inner.model

    def stream(self, messages: Sequence[ChatMessage], *, temperature: float | None = None,
               max_tokens: int | None = None) -> Iterator[ChatStreamPart]:
        completion = self._inner.complete(messages, temperature=temperature, max_tokens=max_tokens)
        return iter((ChatDelta(completion.text), completion))
