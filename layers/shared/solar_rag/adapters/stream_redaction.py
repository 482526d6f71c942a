"""Redaction of a streamed answer: no piece sent on may contain (part of) a secret.

Pieces are redacted together, never one by one (a secret may be split across pieces). What
is sent is the redacted text up to the first place where a secret could be starting: text
that, with the gaps ``SecretRedactor`` tolerates removed, is a beginning of a secret is held
back until it either completes the secret (and is replaced) or stops matching. Everything
else goes out at once, so ordinary answers are not delayed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from solar_rag.adapters.redaction import MIN_SECRET_CHARS, SecretRedactor
from solar_rag.domain import ChatCompletion, ChatMessage
from solar_rag.ports import ChatDelta, ChatStreamPart, StreamingChatModel

_GAPS = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]")


def pending_from(text: str, secrets: Sequence[str]) -> int:
    """The first index of ``text`` from which the rest could be the beginning of a secret
    (``len(text)`` when there is none)."""
    earliest = len(text)
    for secret in secrets:
        window = max(0, len(text) - 8 * len(secret))  # gaps are few in practice
        start = text.find(secret[0], window)
        while 0 <= start < earliest:
            rest = _GAPS.sub("", text[start:])
            if len(rest) < len(secret) and secret.startswith(rest):
                earliest = start
                break
            start = text.find(secret[0], start + 1)
    return earliest


class StreamRedactor:
    """Turns raw pieces into redacted pieces; ``finish`` flushes what was held back."""

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s.strip() for s in secrets if len(s.strip()) >= MIN_SECRET_CHARS]
        self._redactor = SecretRedactor(self._secrets)
        self._raw = ""
        self._sent = ""

    def feed(self, piece: str) -> str:
        self._raw += piece
        redacted = self._redactor.redact(self._raw)
        return self._emit(redacted[: pending_from(redacted, self._secrets)])

    def finish(self) -> str:
        return self._emit(self._redactor.redact(self._raw))

    def redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def _emit(self, stable: str) -> str:
        if not stable.startswith(self._sent):  # cannot happen by construction; never resend
            return ""
        piece, self._sent = stable[len(self._sent):], stable
        return piece


class RedactingStreamingChatModel:
    """A ``StreamingChatModel`` whose pieces and final text never contain the secrets."""

    def __init__(self, inner: StreamingChatModel, secret: Callable[[], str]) -> None:
        self._inner = inner
        self._secret = secret
        self._seen: list[str] = []

    @property
    def model(self) -> str:
        return self._inner.model

    def stream(self, messages: Sequence[ChatMessage], *, temperature: float | None = None,
               max_tokens: int | None = None) -> Iterator[ChatStreamPart]:
        current = self._secret()
        if current not in self._seen:
            self._seen.append(current)
        parts = self._inner.stream(messages, temperature=temperature, max_tokens=max_tokens)
        return self._redacted(parts, StreamRedactor(list(self._seen)))

    @staticmethod
    def _redacted(parts: Iterator[ChatStreamPart], redactor: StreamRedactor) -> Iterator[ChatStreamPart]:
        for part in parts:
            if isinstance(part, ChatDelta):
                piece = redactor.feed(part.text)
            else:
                piece = redactor.finish()
                if piece:
                    yield ChatDelta(piece)
                text = redactor.redact(part.text)
                yield part if text == part.text else ChatCompletion(text, part.model, part.usage)
                continue
            if piece:
                yield ChatDelta(piece)
