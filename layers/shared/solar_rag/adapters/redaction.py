"""Output redaction: the configured secrets never leave the service in a model's answer.

The model never receives the Upstage key (it travels only in the Authorization header), but
a prompt injection in a document, a chat history or a misbehaving model could still produce it;
this is the last line of defence for everything a ChatModel returns (``/v1/chat`` and the
answers of ``/v1/query``). A secret is also found when spelled out with whitespace or
zero-width characters between its characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from solar_rag.domain import ChatCompletion, ChatMessage
from solar_rag.ports import ChatModel

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8
"""Shorter values are not redacted: they would match ordinary words."""
_GAP = r"[\s\u200b\u200c\u200d\u2060\ufeff]*"


class SecretRedactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        unique = sorted({s.strip() for s in secrets if len(s.strip()) >= MIN_SECRET_CHARS},
                        key=len, reverse=True)
        self._patterns = [re.compile(_GAP.join(re.escape(char) for char in secret))
                          for secret in unique]

    def __repr__(self) -> str:
        return f"SecretRedactor({len(self._patterns)} secrets)"

    def redact(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text


class CurrentSecretRedactor:
    """Redacts whatever the secret is now (it may be rotated while the process lives)."""

    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret
        self._seen: list[str] = []
        self._redactor = SecretRedactor(())

    def redact(self, text: str) -> str:
        current = self._secret()
        if current not in self._seen:
            self._seen.append(current)
            self._redactor = SecretRedactor(self._seen)
        return self._redactor.redact(text)


class Redactor(Protocol):
    def redact(self, text: str) -> str: ...


class RedactingChatModel:
    """A ``ChatModel`` whose completions never contain the given secrets."""

    def __init__(self, inner: ChatModel, redactor: Redactor) -> None:
        self._inner = inner
        self._redactor = redactor

    @property
    def model(self) -> str:
        return self._inner.model

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatCompletion:
        completion = self._inner.complete(messages, temperature=temperature, max_tokens=max_tokens)
        text = self._redactor.redact(completion.text)
        return completion if text == completion.text else replace(completion, text=text)
