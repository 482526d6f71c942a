from __future__ import annotations

import threading
import time

import pytest
from solar_rag.resilience.rate_limit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the limiter must never busy-loop with zero sleeps"
        self.sleeps.append(seconds)
        self.now += seconds


def make(rpm: int, tpm: int, clock: FakeClock) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=clock, sleep=clock.sleep)


def test_requests_within_budget_do_not_wait() -> None:
    clock = FakeClock()
    limiter = make(3, 1000, clock)
    for _ in range(3):
        assert limiter.acquire(10) == 0.0
    assert clock.sleeps == []


def test_request_budget_blocks_until_oldest_request_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = make(2, 1000, clock)
    limiter.acquire(1)
    clock.now += 10
    limiter.acquire(1)
    waited = limiter.acquire(1)
    # The first request (t=1000) leaves the 60 s window at t=1060; we were at t=1010.
    assert waited == pytest.approx(50.0)
    assert clock.now == pytest.approx(1060.0)
    # The next one waits for the second request (t=1010) to expire.
    assert limiter.acquire(1) == pytest.approx(10.0)


def test_token_budget_blocks_until_enough_tokens_expire() -> None:
    clock = FakeClock()
    limiter = make(100, 1000, clock)
    limiter.acquire(600)
    clock.now += 5
    limiter.acquire(300)
    clock.now += 5
    # 900 used; 200 more needs the first entry (600) to expire at t=1060, now t=1010.
    assert limiter.acquire(200) == pytest.approx(50.0)
    # 300 + 200 used now: 500 more fits.
    assert limiter.acquire(500) == 0.0


def test_oversized_request_goes_through_once_window_is_empty() -> None:
    clock = FakeClock()
    limiter = make(100, 1000, clock)
    assert limiter.acquire(5000) == 0.0  # empty window: allowed at once
    # It holds the whole budget for a window: even a tiny request waits 60 s.
    assert limiter.acquire(1) == pytest.approx(60.0)
    clock.now += 1
    limiter.acquire(100)
    assert limiter.acquire(5000) == pytest.approx(60.0)  # waits until the window drains


def test_penalise_blocks_everyone_until_deadline_and_never_shortens() -> None:
    clock = FakeClock()
    limiter = make(100, 1000, clock)
    limiter.penalise(2.5)
    limiter.penalise(1.0)  # a shorter penalty must not shorten the first one
    assert limiter.acquire(1) == pytest.approx(2.5)
    assert limiter.acquire(1) == 0.0
    limiter.penalise(0)
    limiter.penalise(-3)
    assert limiter.acquire(1) == 0.0


def test_statistics_and_validation() -> None:
    clock = FakeClock()
    limiter = make(1, 10, clock)
    limiter.acquire(1)
    limiter.acquire(1)
    assert limiter.acquisitions == 2
    assert limiter.total_wait_seconds == pytest.approx(60.0)
    with pytest.raises(ValueError):
        limiter.acquire(-1)
    with pytest.raises(ValueError):
        RateLimiter(0, 10)
    with pytest.raises(ValueError):
        RateLimiter(1, 10, window_seconds=0)


def test_sustained_rate_matches_budget() -> None:
    clock = FakeClock()
    limiter = make(10, 10**9, clock)
    start = clock.now
    stamps = []
    for _ in range(50):
        limiter.acquire(1)
        stamps.append(clock.now)
    # Never more than 10 grants in any 60 s window.
    for i, t in enumerate(stamps):
        assert sum(1 for s in stamps[i:] if s < t + 60) <= 10
    # 50 requests at 10/min: the last one starts after 4 full windows.
    assert clock.now - start == pytest.approx(240.0)


def test_thread_safety_with_real_clock() -> None:
    limiter = RateLimiter(5, 10**6, window_seconds=0.2)
    grants: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            limiter.acquire(1)
            with lock:
                grants.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    elapsed = time.monotonic() - started
    assert len(grants) == 20
    assert limiter.acquisitions == 20
    # 20 grants at 5 per 0.2 s window need at least three windows to pass.
    assert elapsed >= 0.6 - 0.01
    assert elapsed < 3.0


def test_reconcile_replaces_the_estimate_with_the_servers_count() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, 1000, clock=clock, sleep=clock.sleep)
    limiter.acquire(900)
    limiter.reconcile(900, 300)  # the server counted fewer tokens than estimated
    assert limiter.acquire(700) == 0.0  # 300 + 700 fit; with the estimate it would wait
    limiter.reconcile(123, 50)  # no entry of that cost: nothing changes
    limiter.reconcile(700, 0)  # no count from the server: the estimate stays
    assert limiter.acquire(1) == pytest.approx(60.0)
