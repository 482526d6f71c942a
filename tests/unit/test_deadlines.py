"""Request deadlines: every call takes its attempt timeout from what is left, and no retry,
back-off or rate-limit wait runs past it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import Transport
from opensearchpy.exceptions import TransportError
from solar_rag.adapters.opensearch.client import Backoff, BackoffTransport
from solar_rag.adapters.upstage import UpstageClient, UpstageEmbedder
from solar_rag.domain import EmbeddingKind
from solar_rag.errors import DeadlineExceeded, UpstreamRateLimited, UpstreamTimeout
from solar_rag.resilience import deadline
from solar_rag.resilience.rate_limit import RateLimiter, WaitTooLong
from solar_rag.settings import Settings

from tests.fakes.upstage_server import FakeUpstage

KEY = "up_TEST_deadline_k3y_0123456789"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- the deadline itself -----------------------------------------------------------------------

def test_no_budget_means_no_deadline() -> None:
    with deadline.budget(None) as current:
        assert current is None and deadline.current() is None
        assert deadline.attempt_timeout(25.0, "x") == 25.0
        assert deadline.time_left(7.0) == 7.0


def test_attempt_timeout_is_cut_to_what_is_left_and_refused_when_too_little() -> None:
    with deadline.budget(2.0):
        assert 1.9 < deadline.attempt_timeout(25.0, "x") <= 2.0
        assert deadline.attempt_timeout(0.5, "x") == 0.5
    clock = FakeClock()
    tight = deadline.Deadline.after(1.0, clock=clock)
    clock.now += 0.9
    with pytest.raises(DeadlineExceeded, match="time budget of 1 s"):
        tight.check("the Upstage chat request")


def test_an_inner_budget_never_extends_the_outer_one() -> None:
    with deadline.budget(1.0) as outer:
        with deadline.budget(60.0) as inner:
            assert inner is outer
        with deadline.budget(0.5) as nearer:
            assert nearer is not outer and nearer is not None and nearer.remaining() <= 0.5
        assert deadline.current() is outer
    assert deadline.current() is None


def test_deadline_exceeded_is_a_504() -> None:
    error = deadline.Deadline.after(3.0).exceeded("indexing")
    assert isinstance(error, UpstreamTimeout) and error.status == 504 and error.retryable


# --- Upstage ---------------------------------------------------------------------------------------

@pytest.fixture
def fake() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY) as server:
        yield server


def embedder(fake: FakeUpstage, limiter: RateLimiter | None = None, **overrides: Any) -> UpstageEmbedder:
    settings = Settings(_env_file=None, upstage_base_url=fake.base_url, embedding_dimensions=1024,
                        upstage_timeout_seconds=25.0, upstage_max_retries=4, **overrides)
    return UpstageEmbedder(UpstageClient(settings, KEY), settings,
                           limiter or RateLimiter(10_000, 10_000_000))


def test_a_slow_upstage_fails_at_the_deadline_not_at_its_own_timeout(fake: FakeUpstage) -> None:
    fake.delay_next(5.0, times=5)
    started = time.monotonic()
    with deadline.budget(1.0), pytest.raises(UpstreamTimeout) as info:
        embedder(fake).embed(["hello"], EmbeddingKind.QUERY)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.6, elapsed
    assert len(fake.embedding_requests()) == 1  # no retry without time for it
    assert info.value.status == 504


def test_no_retry_when_the_back_off_would_pass_the_deadline(fake: FakeUpstage) -> None:
    fake.fail_next(503, times=5, headers={"Retry-After": "5"})
    started = time.monotonic()
    with deadline.budget(2.0), pytest.raises(Exception) as info:
        embedder(fake).embed(["hello"], EmbeddingKind.QUERY)
    assert time.monotonic() - started < 0.5  # failed at once instead of sleeping 5 s
    assert len(fake.embedding_requests()) == 1
    assert "503" in str(info.value)


def test_retries_go_on_while_the_deadline_allows(fake: FakeUpstage) -> None:
    fake.fail_next(503, times=2, headers={"retry-after-ms": "50"})
    with deadline.budget(5.0):
        assert len(embedder(fake).embed(["hello"], EmbeddingKind.QUERY)) == 1
    assert [r.status for r in fake.embedding_requests()] == [503, 503, 200]


def test_a_rate_limit_wait_past_the_deadline_is_a_429_at_once(fake: FakeUpstage) -> None:
    limiter = RateLimiter(1, 10_000_000)
    slow = embedder(fake, limiter=limiter)
    slow.embed(["first"], EmbeddingKind.QUERY)  # uses the one request of this minute
    started = time.monotonic()
    with deadline.budget(2.0), pytest.raises(UpstreamRateLimited, match="time budget of 2 s"):
        slow.embed(["second"], EmbeddingKind.QUERY)
    assert time.monotonic() - started < 0.5
    assert len(fake.embedding_requests()) == 1


def test_rate_limiter_refuses_a_wait_longer_than_max_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 1000, clock=clock, sleep=lambda s: None)
    limiter.acquire(1)
    with pytest.raises(WaitTooLong):
        limiter.acquire(1, max_wait=10.0)
    assert limiter.acquisitions == 1


# --- OpenSearch --------------------------------------------------------------------------------------

class FiveSecondBackoff(Backoff):
    def delay(self, attempt: int) -> float:
        return 5.0


def test_opensearch_attempts_take_their_timeout_from_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    failures = iter([TransportError(503, "unavailable"), None])

    def perform(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("timeout"))
        failure = next(failures)
        if failure is not None:
            raise failure
        return {"ok": True}

    monkeypatch.setattr(Transport, "perform_request", perform)
    transport = BackoffTransport([{"host": "127.0.0.1", "port": 9}], max_retries=3, timeout=10.0,
                                 sleep=lambda s: None)
    assert transport.perform_request("GET", "/_cluster/health") == {"ok": True}
    assert seen == [None, None]  # no deadline: the connection's own timeout
    failures = iter([TransportError(503, "unavailable"), None])
    seen.clear()
    with deadline.budget(3.0):
        transport.perform_request("GET", "/_cluster/health")
    assert len(seen) == 2 and all(2.5 < t <= 3.0 for t in seen)


def test_opensearch_does_not_retry_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def perform(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(url)
        raise TransportError(503, "unavailable")

    monkeypatch.setattr(Transport, "perform_request", perform)
    transport = BackoffTransport([{"host": "127.0.0.1", "port": 9}], max_retries=5, timeout=10.0,
                                 sleep=lambda s: None, backoff=FiveSecondBackoff())
    with deadline.budget(1.0), pytest.raises(TransportError):
        transport.perform_request("POST", "/rag-chunks/_search")
    assert calls == ["/rag-chunks/_search"]
    with deadline.budget(0.1), pytest.raises(DeadlineExceeded):
        transport.perform_request("POST", "/rag-chunks/_search")
    assert len(calls) == 1  # not even attempted


# --- AWS (botocore) ---------------------------------------------------------------------------------

def test_aws_calls_are_not_sent_past_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws
    from solar_rag.adapters import aws_clients
    from solar_rag.adapters.dynamodb_registry import DynamoDbDocumentRegistry
    from solar_rag.adapters.s3_source import S3ObjectSource

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    aws_clients.reset()
    try:
        with mock_aws():
            aws_clients.client("s3").create_bucket(Bucket="deadline-bucket")
            source = S3ObjectSource("deadline-bucket")
            assert source.exists("missing.txt") is False  # a normal call goes through
            with deadline.budget(0.1), pytest.raises(DeadlineExceeded, match="AWS request HEAD"):
                source.exists("missing.txt")
            with deadline.budget(0.1), pytest.raises(DeadlineExceeded):
                DynamoDbDocumentRegistry("no-such-table").get("doc")
    finally:
        aws_clients.reset()
