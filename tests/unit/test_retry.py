"""The one retry mechanism (``solar_rag.resilience.retry``): bounds, back-off, Retry-After,
the deadline, patience; and the adapters that had their own loops now run under it."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from solar_rag.errors import ConcurrentUpdate, DeadlineExceeded
from solar_rag.resilience import deadline, retry
from solar_rag.resilience.retry import Backoff, Policy


class Transient(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("transient")
        self.retry_after = retry_after


class Permanent(Exception):
    pass


class Clock:
    """Time that passes only when slept (no real waiting in these tests)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Raises the given failures in turn, then returns ``"done"``."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


@contextmanager
def budget_on(clock: Clock, seconds: float) -> Iterator[None]:
    """A request budget measured on ``clock`` (as ``deadline.budget`` opens one on the real one)."""
    token = deadline._current.set(deadline.Deadline.after(seconds, clock=clock))
    try:
        yield
    finally:
        deadline._current.reset(token)


def run(policy: Policy, function: Callable[[], str], clock: Clock, **options: Any) -> str:
    options.setdefault("retry_on", lambda error: isinstance(error, Transient))
    result: str = retry.retrying(policy, sleep=clock.sleep, clock=clock, **options)(function)
    return result


POLICY = Policy("test", Backoff(base_seconds=1.0, cap_seconds=8.0, jitter=0.0), attempts=5)


# --- back-off ---------------------------------------------------------------------------------------

def test_backoff_doubles_up_to_the_cap_without_jitter() -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=3.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize("jitter", [0.25, 0.5, 1.0])
def test_jitter_takes_at_most_its_share_off(jitter: float) -> None:
    backoff = Backoff(base_seconds=1.0, cap_seconds=4.0, jitter=jitter, rng=random.Random(7))
    delays = [backoff.delay(2) for _ in range(200)]
    assert all(4.0 * (1 - jitter) <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100  # really jittered: clients told the same thing spread out


def test_a_policy_must_be_bounded() -> None:
    with pytest.raises(ValueError, match="unbounded"):
        Policy("forever", Backoff())
    with pytest.raises(ValueError, match="at least one attempt"):
        Policy("never", Backoff(), attempts=0)


# --- the mechanism ----------------------------------------------------------------------------------

def test_transient_failures_are_retried_with_growing_waits() -> None:
    clock, flaky = Clock(), Flaky(Transient(), Transient(), Transient())
    assert run(POLICY, flaky, clock) == "done"
    assert flaky.calls == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_attempts_are_bounded_and_the_last_error_surfaces_as_it_was() -> None:
    clock = Clock()
    last = Transient()
    flaky = Flaky(Transient(), Transient(), Transient(), Transient(), last, Transient())
    with pytest.raises(Transient) as raised:
        run(POLICY, flaky, clock)
    assert raised.value is last
    assert flaky.calls == 5 and len(clock.sleeps) == 4


def test_permanent_failures_are_never_retried() -> None:
    clock, flaky = Clock(), Flaky(Permanent())
    with pytest.raises(Permanent):
        run(POLICY, flaky, clock)
    assert flaky.calls == 1 and clock.sleeps == []


def test_retry_after_replaces_the_back_off_with_a_little_extra() -> None:
    clock, flaky = Clock(), Flaky(Transient(retry_after=3.0), Transient())
    run(POLICY, flaky, clock, retry_after=lambda error: getattr(error, "retry_after", None))
    assert 3.0 <= clock.sleeps[0] <= 3.0 * (1 + retry.RETRY_AFTER_JITTER)
    assert clock.sleeps[1] == 2.0  # no Retry-After: the back-off of the second retry


def test_a_retry_after_longer_than_the_policy_allows_is_not_waited_for() -> None:
    clock, flaky = Clock(), Flaky(Transient(retry_after=120.0))
    capped = Policy("capped", POLICY.backoff, attempts=3, max_retry_after_seconds=60.0)
    with pytest.raises(Transient):
        run(capped, flaky, clock, retry_after=lambda error: getattr(error, "retry_after", None))
    assert flaky.calls == 1 and clock.sleeps == []


def test_no_sleep_runs_past_the_deadline() -> None:
    """5 s budget, 1-2-4 s back-off: the 4 s sleep would leave less than an attempt needs."""
    clock = Clock()
    flaky = Flaky(*[Transient() for _ in range(10)])
    with budget_on(clock, 5.0), pytest.raises(Transient):
        run(POLICY, flaky, clock)
    assert clock.sleeps == [1.0, 2.0]
    assert sum(clock.sleeps) + deadline.MIN_ATTEMPT_SECONDS <= 5.0
    assert flaky.calls == 3


def test_a_server_pause_past_the_deadline_is_not_waited_for() -> None:
    """A 429 whose Retry-After ends after the budget surfaces at once (the API's 429)."""
    clock, flaky = Clock(), Flaky(Transient(retry_after=10.0))
    with budget_on(clock, 5.0), pytest.raises(Transient):
        run(POLICY, flaky, clock, retry_after=lambda error: getattr(error, "retry_after", None))
    assert clock.sleeps == [] and flaky.calls == 1


def test_patience_cuts_the_last_sleep_and_stops_at_its_end() -> None:
    policy = Policy("lock", Backoff(base_seconds=1.0, cap_seconds=8.0, jitter=0.0),
                    patience_seconds=5.5)
    clock = Clock()
    flaky = Flaky(*[Transient() for _ in range(10)])
    with pytest.raises(Transient):
        run(policy, flaky, clock)
    assert clock.sleeps == [1.0, 2.0, 2.5]  # the 4 s wait cut to what patience leaves
    assert flaky.calls == 4


# --- the adapters under it --------------------------------------------------------------------------

def test_upstage_retry_statuses_are_the_transient_ones() -> None:
    statuses = retry.UPSTAGE_RETRY_STATUSES
    assert {408, 409, 429, 500, 502, 503, 504, 599} <= statuses
    assert not statuses & {400, 401, 403, 404, 413, 422}


def test_opensearch_never_retries_a_bad_request() -> None:
    assert not {400, 401, 403, 404, 409, 413} & retry.OPENSEARCH_RETRY_STATUSES
    assert 400 not in retry.OPENSEARCH_INIT_RETRY_STATUSES  # the 9-minute 400 of old


def test_bulk_items_throttled_are_not_retried_past_the_deadline() -> None:
    from solar_rag.adapters.opensearch.bulk import BulkAction, BulkLimits, BulkWriter

    class Throttling:
        calls = 0

        def bulk(self, body: bytes, **_: Any) -> dict[str, Any]:
            self.calls += 1
            lines = body.count(b"\n") // 2
            return {"items": [{"index": {"status": 429, "error": {"type": "es_rejected"}}}] * lines}

    client, sleeps = Throttling(), list[float]()
    writer = BulkWriter(client, "rag-chunks", BulkLimits(backoff=Backoff(1.0, 2.0, jitter=0.0)),  # type: ignore[arg-type]
                        sleep=sleeps.append)
    with deadline.budget(1.0):
        results = writer.run([BulkAction.index("c1", {"text": "x"}, "c1")])
    assert [r.status for r in results] == [429]  # reported, for the caller to fail the write
    assert client.calls == 1 and sleeps == []


def test_a_local_lock_wait_ends_in_concurrent_update(tmp_path: Any) -> None:
    from solar_rag.adapters.local_store.locks import document_lock

    clock = Clock()
    with document_lock(tmp_path, "doc"), pytest.raises(ConcurrentUpdate, match="another writer"), \
            document_lock(tmp_path, "doc", timeout=0.2, clock=clock, sleep=clock.sleep):
        pytest.fail("the lock was taken twice")
    assert clock.sleeps and sum(clock.sleeps) == pytest.approx(0.2)
    assert max(clock.sleeps) <= retry.DOCUMENT_LOCK_LOCAL.backoff.cap_seconds


def test_the_deadline_error_of_an_attempt_is_not_retried() -> None:
    clock = Clock()
    flaky = Flaky(DeadlineExceeded("no time left"))
    with pytest.raises(DeadlineExceeded):
        run(POLICY, flaky, clock, retry_on=lambda error: isinstance(error, Transient | ConnectionError))
    assert flaky.calls == 1
