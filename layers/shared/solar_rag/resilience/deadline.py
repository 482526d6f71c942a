"""Time budgets: every request or invocation carries a deadline, and every call it makes to
Upstage, OpenSearch or S3 takes its per-attempt timeout from what is left and stops retrying
when too little is left for another attempt.

The deadline travels in a context variable, so services stay free of it: the edge (the Lambda
handler, or a route) opens a ``budget``, the adapters read ``current()``. Starlette copies the
context into the threads that run sync routes, and Mangum's event loop runs in the caller's
context, so a budget opened around a Lambda invocation reaches every adapter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from solar_rag.errors import DeadlineExceeded

MIN_ATTEMPT_SECONDS = 0.25
"""An attempt with less time than this left is not started: it could not finish."""


@dataclass(frozen=True, slots=True)
class Deadline:
    expires_at: float
    budget_seconds: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, seconds, clock)

    def remaining(self) -> float:
        return self.expires_at - self.clock()

    def exceeded(self, what: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{what} could not finish within the request's time budget of "
            f"{self.budget_seconds:.0f} s")

    def check(self, what: str, *, needed: float = MIN_ATTEMPT_SECONDS) -> float:
        """The seconds left; raises ``DeadlineExceeded`` when fewer than ``needed`` are."""
        left = self.remaining()
        if left < needed:
            raise self.exceeded(what)
        return left


_current: ContextVar[Deadline | None] = ContextVar("solar_rag_deadline", default=None)


def current() -> Deadline | None:
    return _current.get()


@contextmanager
def budget(seconds: float | None) -> Iterator[Deadline | None]:
    """Run the block under a deadline ``seconds`` from now (``None``: no deadline).

    A budget never extends an enclosing one: the nearer deadline wins.
    """
    outer = _current.get()
    deadline = Deadline.after(seconds) if seconds is not None else None
    if outer is not None and (deadline is None or outer.expires_at <= deadline.expires_at):
        deadline = outer
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def attempt_timeout(configured: float, what: str) -> float:
    """The timeout for one attempt of a call: the configured one, cut to what the current
    deadline leaves; raises ``DeadlineExceeded`` when that is too little to try."""
    deadline = _current.get()
    if deadline is None:
        return configured
    return min(configured, deadline.check(what))


def time_left(default: float) -> float:
    """Seconds left under the current deadline (``default`` when there is none)."""
    deadline = _current.get()
    return default if deadline is None else min(default, deadline.remaining())
