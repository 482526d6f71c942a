"""Chat: a conversation sent to the LLM as it is, after validation."""

from __future__ import annotations

from collections.abc import Sequence

from solar_rag.domain import ChatCompletion, ChatMessage
from solar_rag.errors import InvalidInput
from solar_rag.ports import ChatModel


class ChatService:
    def __init__(self, *, chat_model: ChatModel, max_chars: int, max_messages: int) -> None:
        self._chat_model = chat_model
        self._max_chars = max_chars
        self._max_messages = max_messages

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatCompletion:
        validate_messages(messages, max_chars=self._max_chars, max_messages=self._max_messages)
        return self._chat_model.complete(messages, temperature=temperature, max_tokens=max_tokens)


def validate_messages(messages: Sequence[ChatMessage], *, max_chars: int, max_messages: int) -> None:
    """What every conversation sent to the model must satisfy (streamed or not)."""
    if not messages:
        raise InvalidInput("messages must not be empty")
    if len(messages) > max_messages:
        raise InvalidInput(f"at most {max_messages} messages are accepted")
    if not any(m.role == "user" and m.content.strip() for m in messages):
        raise InvalidInput("messages must contain a non-empty user message")
    if sum(len(m.content) for m in messages) > max_chars:
        raise InvalidInput(f"messages are longer than {max_chars} characters in total")
