"""Client-side throttle for an API limited in requests and tokens per minute.

A sliding-window log rather than token buckets: a bucket that starts full lets through up to
twice its budget within one minute (the burst plus the refill), which a server counting a
true sliding minute answers with 429. The log never holds more than ``requests_per_minute``
entries, so it stays small.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class WaitTooLong(Exception):
    """The budget would allow the request only after the caller's ``max_wait``."""


class RateLimiter:
    """Blocks callers until both the request and the token budget of the window allow.

    A single request costing more than the whole token budget is let through once the window
    is empty (otherwise it could never run); it then holds the budget for a full window.
    ``penalise`` stops everyone until a server-given point in time (429 + Retry-After).
    """

    def __init__(
        self,
        requests_per_minute: int,
        tokens_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        window_seconds: float = 60.0,
    ) -> None:
        if requests_per_minute < 1 or tokens_per_minute < 1:
            raise ValueError("rate limits must be positive")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.window_seconds = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._log: deque[tuple[float, int]] = deque()
        self._tokens_in_window = 0
        self._blocked_until = float("-inf")
        self.total_wait_seconds = 0.0
        self.acquisitions = 0

    def acquire(self, tokens: int, *, max_wait: float = math.inf) -> float:
        """Wait until a request costing ``tokens`` may be sent; returns the seconds waited.

        Raises ``WaitTooLong`` at once, without waiting, if that would take over ``max_wait``
        seconds (a deadline that a wait would overrun)."""
        if tokens < 0:
            raise ValueError("tokens must not be negative")
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now, tokens)
                if wait <= 0.0:
                    self._log.append((now, tokens))
                    self._tokens_in_window += tokens
                    self.acquisitions += 1
                    self.total_wait_seconds += waited
                    return waited
            if waited + wait > max_wait:
                raise WaitTooLong(f"the rate limit allows this request in {wait:.1f} s")
            self._sleep(wait)
            waited += wait

    def reconcile(self, estimated: int, actual: int) -> None:
        """Replace a request's estimated cost in the window with the server's own count.

        The estimate is deliberately conservative (up to ~3x for Korean text), so charging it
        for the whole minute would leave most of the token budget unused. The latest entry of
        that estimated cost still in the window is corrected; once it has expired nothing
        changes. Counts that are missing or not positive are ignored.
        """
        if actual <= 0 or actual == estimated:
            return
        with self._lock:
            for position in range(len(self._log) - 1, -1, -1):
                stamp, cost = self._log[position]
                if cost == estimated:
                    self._log[position] = (stamp, actual)
                    self._tokens_in_window += actual - estimated
                    return

    def penalise(self, seconds: float) -> None:
        """Nobody acquires for ``seconds`` from now (extends, never shortens, a penalty)."""
        if seconds <= 0:
            return
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def _wait_needed(self, now: float, tokens: int) -> float:
        self._expire(now)
        waits = [self._blocked_until - now]
        if len(self._log) >= self.requests_per_minute:
            # The entry whose expiry brings the count below the limit.
            oldest_needed = self._log[len(self._log) - self.requests_per_minute][0]
            waits.append(oldest_needed + self.window_seconds - now)
        if self._tokens_in_window and self._tokens_in_window + tokens > self.tokens_per_minute:
            waits.append(self._token_expiry(tokens) + self.window_seconds - now)
        return max(waits)

    def _token_expiry(self, tokens: int) -> float:
        """Timestamp of the log entry after whose expiry ``tokens`` fit (or the log is empty)."""
        remaining = self._tokens_in_window
        for stamp, cost in self._log:
            remaining -= cost
            if remaining == 0 or remaining + tokens <= self.tokens_per_minute:
                return stamp
        return self._log[-1][0]  # unreachable: the loop ends at remaining == 0

    def _expire(self, now: float) -> None:
        horizon = now - self.window_seconds
        while self._log and self._log[0][0] <= horizon:
            _, cost = self._log.popleft()
            self._tokens_in_window -= cost
