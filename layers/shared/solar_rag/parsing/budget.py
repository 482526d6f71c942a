"""Per-document parsing budgets: time, decompressed bytes, nesting depth, element count.

Every parser of ``solar_rag.text`` runs against one :class:`ParseBudget` per document and
checks it as it goes (cooperatively: the checks sit in the parsers' loops, so a deadline is
honoured within one step of work, never by killing a thread). Exceeding a budget raises
``PayloadTooLarge`` (too big or too slow) or ``UnsupportedDocument`` (nested too deeply), with
a reason that names the setting: the document fails alone and is never retried.

The active budget is also published in a context variable, for code that runs inside a
third-party library (pypdf's stream decoders) and cannot be handed one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from solar_rag.errors import PayloadTooLarge, UnsupportedDocument


@dataclass(frozen=True, slots=True)
class ParseLimits:
    time_seconds: float = 30.0
    decompressed_bytes: int = 64 * 1024 * 1024
    max_depth: int = 100
    max_elements: int = 500_000
    max_text_chars: int = 2_000_000


def parse_limits(settings: Any) -> ParseLimits:
    """The limits configured in ``Settings`` (typed ``Any`` to keep this module light)."""
    return ParseLimits(
        time_seconds=settings.parse_time_budget_seconds,
        decompressed_bytes=settings.parse_max_decompressed_bytes,
        max_depth=settings.parse_max_depth,
        max_elements=settings.parse_max_elements,
        max_text_chars=settings.max_document_chars,
    )


class ParseBudget:
    """What one document may still spend. Not thread-safe: one per document and thread."""

    __slots__ = ("_clock", "_deadline", "_ticks", "decompressed", "elements", "limits")

    def __init__(self, limits: ParseLimits | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or ParseLimits()
        self._clock = clock
        self._deadline = clock() + self.limits.time_seconds
        self._ticks = 0
        self.decompressed = 0
        self.elements = 0

    def check_time(self) -> None:
        if self._clock() > self._deadline:
            raise PayloadTooLarge(
                f"parsing the document took longer than {self.limits.time_seconds:g} s "
                "(PARSE_TIME_BUDGET_SECONDS): it is too large or too complex")

    def tick(self, every: int = 1024) -> None:
        """``check_time`` once every ``every`` calls (a clock read costs more than a count)."""
        self._ticks += 1
        if self._ticks >= every:
            self._ticks = 0
            self.check_time()

    def add_decompressed(self, size: int, what: str) -> None:
        self.decompressed += size
        if self.decompressed > self.limits.decompressed_bytes:
            raise PayloadTooLarge(
                f"{what} decompresses to more than {self.limits.decompressed_bytes} bytes "
                "in total (PARSE_MAX_DECOMPRESSED_BYTES)")

    def remaining_decompressed(self) -> int:
        return max(0, self.limits.decompressed_bytes - self.decompressed)

    def add_elements(self, count: int, what: str) -> None:
        self.elements += count
        if self.elements > self.limits.max_elements:
            raise PayloadTooLarge(
                f"{what} has more than {self.limits.max_elements} elements "
                "(PARSE_MAX_ELEMENTS)")
        self.tick(64)

    def check_depth(self, depth: int, what: str) -> None:
        if depth > self.limits.max_depth:
            raise UnsupportedDocument(
                f"{what} nests deeper than {self.limits.max_depth} levels (PARSE_MAX_DEPTH)")

    def check_text(self, chars: int, what: str) -> None:
        if chars > self.limits.max_text_chars:
            raise PayloadTooLarge(
                f"{what} holds more than {self.limits.max_text_chars} characters of text "
                "(MAX_DOCUMENT_CHARS)")


_current: ContextVar[ParseBudget | None] = ContextVar("solar_rag_parse_budget", default=None)


@contextmanager
def active(budget: ParseBudget) -> Iterator[ParseBudget]:
    """Publish ``budget`` to :func:`current` for the duration of the block."""
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)


def current() -> ParseBudget | None:
    return _current.get()


def too_deep(what: str) -> UnsupportedDocument:
    """The error for a RecursionError that escaped a parser (a bug, but never a crash)."""
    return UnsupportedDocument(f"{what} is nested too deeply to be parsed")
