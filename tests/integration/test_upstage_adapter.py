"""The Upstage adapter against the fake Upstage server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest
from solar_rag.adapters.offline_embedder import HashingEmbedder
from solar_rag.adapters.upstage import UpstageChatModel, UpstageClient, UpstageEmbedder
from solar_rag.domain import ChatMessage, EmbeddingKind
from solar_rag.errors import (
    InvalidInput,
    NotConfigured,
    UpstageKeyRejected,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from solar_rag.resilience.rate_limit import RateLimiter
from solar_rag.retrieval.vectors import norm
from solar_rag.settings import Settings
from solar_rag.text.tokens import estimate_tokens

from tests.fakes.upstage_server import FakeUpstage

KEY = "up_TEST_k3y_9f8e7d6c5b4a_do_not_leak"
P = EmbeddingKind.PASSAGE
Q = EmbeddingKind.QUERY


class RecordingSleep:
    """Stands in for ``time.sleep`` where only the requested delays matter."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY) as server:
        yield server


def settings_for(fake: FakeUpstage, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "upstage_base_url": fake.base_url,
        "upstage_timeout_seconds": 5.0,
        "upstage_max_retries": 3,
        "embedding_dimensions": 1024,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def generous_limiter() -> RateLimiter:
    return RateLimiter(10_000, 10_000_000)


def embedder_for(fake: FakeUpstage, *, key: str = KEY, sleep: Any = None,
                 limiter: RateLimiter | None = None, **overrides: Any,
                 ) -> tuple[UpstageEmbedder, UpstageClient]:
    settings = settings_for(fake, **overrides)
    client = UpstageClient(settings, key, sleep=sleep or RecordingSleep())
    return UpstageEmbedder(client, settings, limiter or generous_limiter()), client


def chat_for(fake: FakeUpstage, **overrides: Any) -> tuple[UpstageChatModel, UpstageClient]:
    client = UpstageClient(settings_for(fake, **overrides), KEY, sleep=RecordingSleep())
    return UpstageChatModel(client), client


TEXTS = [f"Document number {i} talks about topic {i % 3} and city {i}." for i in range(7)]


# -- embeddings --------------------------------------------------------------------------------


def test_passage_and_query_models_key_and_float_format(fake: FakeUpstage) -> None:
    embedder, _ = embedder_for(fake)
    assert embedder.space == "upstage:solar-embedding-2-passage:1024"
    assert embedder.dimensions == 1024
    embedder.embed(["a passage"], P)
    embedder.embed(["a question?"], Q)
    passage, query = fake.embedding_requests()
    assert passage.model == "solar-embedding-2-passage" == embedder.model_for(P)
    assert query.model == "solar-embedding-2-query" == embedder.model_for(Q)
    assert passage.headers["authorization"] == f"Bearer {KEY}"
    # The SDK asks for base64 unless told otherwise; Upstage's support for it is unknown.
    assert passage.body["encoding_format"] == "float"


def test_vectors_match_the_server_in_input_order(fake: FakeUpstage) -> None:
    embedder, _ = embedder_for(fake)
    expected = HashingEmbedder(1024).embed(TEXTS, P)
    got = embedder.embed(TEXTS, P)
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == pytest.approx(theirs)


def test_batches_split_by_count(fake: FakeUpstage) -> None:
    embedder, _ = embedder_for(fake, embedding_batch_size=3)
    vectors = embedder.embed(TEXTS, P)
    sizes = [len(r.inputs) for r in fake.embedding_requests()]
    assert sizes == [3, 3, 1]
    assert [text for r in fake.embedding_requests() for text in r.inputs] == TEXTS
    assert len(vectors) == 7


def test_batches_split_by_token_budget(fake: FakeUpstage) -> None:
    long_text = "tokens " * 100  # well above a third of the 512-token budget
    per_text = estimate_tokens(long_text)
    assert 512 // 3 < per_text <= 512 // 2
    embedder, _ = embedder_for(fake, embedding_batch_size=100, embedding_batch_tokens=512)
    embedder.embed([long_text + str(i) for i in range(5)], P)
    sizes = [len(r.inputs) for r in fake.embedding_requests()]
    assert sizes == [2, 2, 1]


def test_oversized_single_text_goes_alone(fake: FakeUpstage) -> None:
    embedder, _ = embedder_for(fake, embedding_batch_tokens=512)
    huge = "word " * 2000
    embedder.embed(["small", huge, "small again"], P)
    assert [len(r.inputs) for r in fake.embedding_requests()] == [1, 1, 1]


def test_order_restored_by_index(fake: FakeUpstage) -> None:
    fake.shuffle_embeddings = True
    embedder, _ = embedder_for(fake)
    expected = HashingEmbedder(1024).embed(TEXTS, P)
    got = embedder.embed(TEXTS, P)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == pytest.approx(theirs)


def test_vectors_are_l2_normalised(fake: FakeUpstage) -> None:
    fake.vector_scale = 3.5
    embedder, _ = embedder_for(fake)
    for vector in embedder.embed(TEXTS, P):
        assert norm(vector) == pytest.approx(1.0)


def test_dimension_mismatch_is_an_upstream_error(fake: FakeUpstage) -> None:
    fake.wrong_dimensions = 512
    embedder, _ = embedder_for(fake)
    with pytest.raises(UpstreamError) as info:
        embedder.embed(["hello"], Q)
    message = str(info.value)
    assert "512" in message
    assert "1024" in message
    assert "solar-embedding-2-query" in message


def test_empty_inputs(fake: FakeUpstage) -> None:
    embedder, _ = embedder_for(fake)
    assert embedder.embed([], P) == []
    with pytest.raises(InvalidInput, match="input 1"):
        embedder.embed(["fine", ""], P)
    with pytest.raises(InvalidInput):
        embedder.embed(["  \n "], Q)
    assert fake.embedding_requests() == []


def test_empty_key_is_not_configured(fake: FakeUpstage) -> None:
    with pytest.raises(NotConfigured):
        UpstageClient(settings_for(fake), "  ")


# -- retries and error mapping --------------------------------------------------------------


@pytest.mark.parametrize("headers", [{"Retry-After": "0.3"}, {"retry-after-ms": "300"}])
def test_429_waits_for_retry_after(fake: FakeUpstage, headers: dict[str, str]) -> None:
    limiter = generous_limiter()
    embedder, client = embedder_for(fake, sleep=time.sleep, limiter=limiter)
    fake.fail_next(429, headers=headers)
    assert len(embedder.embed(["hello"], P)) == 1
    first, second = fake.embedding_requests()
    assert first.status == 429
    assert second.status == 200
    gap = second.received_at - first.received_at
    assert 0.3 <= gap < 0.3 * 1.1 + 0.25
    assert client.stats.retries == 1
    assert client.stats.rate_limited == 1
    assert limiter.acquisitions == 2  # every attempt goes through the limiter


def test_retry_after_also_pauses_the_shared_limiter(fake: FakeUpstage) -> None:
    clock = FakeClock()
    limiter = RateLimiter(10_000, 10_000_000, clock=clock, sleep=clock.sleep)
    embedder, _ = embedder_for(fake, limiter=limiter)  # the client's own sleep only records
    fake.fail_next(429, headers={"Retry-After": "7"})
    embedder.embed(["hello"], P)
    # The retry's acquire waited out the penalty on the limiter's clock.
    assert clock.now == pytest.approx(7.0)


def test_500_then_success(fake: FakeUpstage) -> None:
    sleep = RecordingSleep()
    embedder, client = embedder_for(fake, sleep=sleep)
    fake.fail_next(500, message="internal")
    assert len(embedder.embed(["hello"], P)) == 1
    assert [r.status for r in fake.embedding_requests()] == [500, 200]
    assert client.stats.retries == 1
    assert 0.375 <= sleep.delays[0] <= 0.5


def test_backoff_grows_exponentially_with_jitter(fake: FakeUpstage) -> None:
    sleep = RecordingSleep()
    embedder, _ = embedder_for(fake, sleep=sleep, upstage_max_retries=4)
    fake.fail_next(503, times=4)
    embedder.embed(["hello"], P)
    assert len(sleep.delays) == 4
    for attempt, delay in enumerate(sleep.delays):
        nominal = 0.5 * 2**attempt
        assert nominal * 0.75 <= delay <= nominal


@pytest.mark.parametrize("status", [408, 409, 502])
def test_transient_statuses_are_retried(fake: FakeUpstage, status: int) -> None:
    embedder, _ = embedder_for(fake)
    fake.fail_next(status)
    embedder.embed(["hello"], P)
    assert [r.status for r in fake.embedding_requests()] == [status, 200]


def test_persistent_429_becomes_rate_limited(fake: FakeUpstage) -> None:
    sleep = RecordingSleep()
    embedder, client = embedder_for(fake, sleep=sleep, upstage_max_retries=2)
    fake.fail_next(429, times=10, headers={"retry-after-ms": "10"})
    with pytest.raises(UpstreamRateLimited) as info:
        embedder.embed(["hello"], P)
    assert "3 attempts" in str(info.value)
    assert len(fake.embedding_requests()) == 3
    assert client.stats.failures == 1
    assert all(0.01 <= d <= 0.011 for d in sleep.delays)


def test_huge_retry_after_is_not_waited_for(fake: FakeUpstage) -> None:
    sleep = RecordingSleep()
    embedder, _ = embedder_for(fake, sleep=sleep)
    fake.fail_next(429, headers={"Retry-After": "3600"})
    with pytest.raises(UpstreamRateLimited):
        embedder.embed(["hello"], P)
    assert sleep.delays == []
    assert len(fake.embedding_requests()) == 1


def test_persistent_500_becomes_upstream_error(fake: FakeUpstage) -> None:
    embedder, _ = embedder_for(fake, upstage_max_retries=1)
    fake.fail_next(500, times=2, message="model overloaded")
    with pytest.raises(UpstreamError) as info:
        embedder.embed(["hello"], P)
    assert type(info.value) is UpstreamError
    assert "500" in str(info.value)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_not_retried(fake: FakeUpstage, status: int) -> None:
    embedder, client = embedder_for(fake)
    fake.fail_next(status, message=f"model solar-x not usable ({status})")
    with pytest.raises(UpstreamRejected) as info:
        embedder.embed(["hello"], P)
    assert f"model solar-x not usable ({status})" in str(info.value)
    assert info.value.retryable is False
    assert len(fake.embedding_requests()) == 1
    assert client.stats.retries == 0


def test_real_400_from_server_carries_upstage_message(fake: FakeUpstage) -> None:
    _, client = embedder_for(fake)
    with pytest.raises(UpstreamRejected, match="must not be empty"):
        client.call("embeddings", lambda api: api.embeddings.create(
            model="m", input=[""], encoding_format="float"))


def test_timeout_becomes_upstream_timeout(fake: FakeUpstage) -> None:
    embedder, client = embedder_for(fake, upstage_timeout_seconds=0.3, upstage_max_retries=1)
    fake.delay_next(1.5, times=2)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        embedder.embed(["hello"], P)
    elapsed = time.monotonic() - started
    assert "0.3 s" in str(info.value)
    assert len(fake.embedding_requests()) == 2
    assert 0.6 <= elapsed < 1.4
    assert client.stats.retries == 1


def test_timeout_then_success(fake: FakeUpstage) -> None:
    embedder, _ = embedder_for(fake, upstage_timeout_seconds=0.3)
    fake.delay_next(1.0)
    assert len(embedder.embed(["hello"], P)) == 1


def test_dropped_connection_is_retried(fake: FakeUpstage) -> None:
    embedder, _ = embedder_for(fake)
    fake.drop_next()
    assert len(embedder.embed(["hello"], P)) == 1
    assert [r.fault for r in fake.embedding_requests()] == ["drop", None]


def test_unreachable_server_becomes_upstream_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(_env_file=None, upstage_base_url=f"http://127.0.0.1:{port}/v1",
                        upstage_timeout_seconds=2.0, upstage_max_retries=1)
    sleep = RecordingSleep()
    client = UpstageClient(settings, KEY, sleep=sleep)
    embedder = UpstageEmbedder(client, settings, generous_limiter())
    with pytest.raises(UpstreamError, match="Could not connect"):
        embedder.embed(["hello"], P)
    assert len(sleep.delays) == 1


def test_chaos_is_survived_with_retries(fake: FakeUpstage) -> None:
    fake.chaos(0.3, seed=3, kinds=("429", "500", "503"))
    embedder, client = embedder_for(fake, upstage_max_retries=8, embedding_batch_size=2)
    texts = [f"chaos text {i}" for i in range(30)]
    vectors = embedder.embed(texts, P)
    assert len(vectors) == 30
    assert fake.faults_injected > 0
    assert client.stats.retries == fake.faults_injected


# -- the key never leaks ----------------------------------------------------------------------


def _assert_no_key(exc: BaseException, records: list[logging.LogRecord], key: str) -> None:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        assert key not in str(item)
        assert key not in repr(item)
        assert all(key not in str(arg) for arg in item.args)
    for record in records:
        assert key not in record.getMessage(), record.name
        assert key not in (record.exc_text or "")


def test_401_is_rejected_and_the_key_never_leaks(
    fake: FakeUpstage, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "up_WRONG_0123456789abcdef_distinctive"
    caplog.set_level(logging.DEBUG)
    embedder, client = embedder_for(fake, key=wrong)
    with pytest.raises(UpstageKeyRejected) as info:
        embedder.embed(["hello"], P)
    assert str(info.value).startswith("Upstage rejected the API key (401)")
    assert len(fake.embedding_requests()) == 1  # not retried
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    # The fake echoes the presented key in its 401 body: it must not reach us.
    assert wrong in str(fake.embedding_requests()[0].headers)
    _assert_no_key(info.value, caplog.records, wrong)
    assert wrong not in repr(client)
    assert any(r.name == "solar_rag.upstage" for r in caplog.records)


def test_key_echoed_in_other_errors_is_redacted(
    fake: FakeUpstage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    embedder, _ = embedder_for(fake)
    fake.fail_next(400, message=f"bad request from key {KEY}")
    with pytest.raises(UpstreamRejected) as info:
        embedder.embed(["hello"], P)
    assert "bad request from key ***" in str(info.value)
    _assert_no_key(info.value, caplog.records, KEY)


def test_logs_hold_no_texts_and_no_key(
    fake: FakeUpstage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="solar_rag.upstage")
    embedder, _ = embedder_for(fake)
    fake.fail_next(500)
    secret_text = "confidential-paragraph-xyz"
    embedder.embed([secret_text], P)
    ours = [r for r in caplog.records if r.name == "solar_rag.upstage"]
    assert ours, "the adapter logs requests and retries"
    assert any("retrying" in r.getMessage() for r in ours)
    for record in ours:
        assert secret_text not in record.getMessage()
        assert KEY not in record.getMessage()


# -- chat ------------------------------------------------------------------------------------


def test_chat_completion_maps_model_usage_and_options(fake: FakeUpstage) -> None:
    fake.model_suffix = "-260101"
    chat, _ = chat_for(fake, chat_max_tokens=321)
    sources = "<sources>\n[1] (Guide)\nSeoul is the capital of Korea. It is big.\n</sources>"
    result = chat.complete([ChatMessage("system", "Be brief."),
                            ChatMessage("user", f"{sources}\n\nQuestion: capital?")],
                           temperature=0.2)
    assert result.text == "Seoul is the capital of Korea. [1]"
    assert result.model == "solar-pro3-260101"
    assert chat.model == "solar-pro3"
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.usage.completion_tokens > 0
    (request,) = fake.chat_requests()
    assert request.body["max_tokens"] == 321
    assert request.body["temperature"] == 0.2
    assert request.body["model"] == "solar-pro3"
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]


def test_chat_explicit_max_tokens_and_no_temperature(fake: FakeUpstage) -> None:
    chat, _ = chat_for(fake)
    result = chat.complete([ChatMessage("user", "hello there")], max_tokens=50)
    assert result.text == "FAKE: hello there"
    (request,) = fake.chat_requests()
    assert request.body["max_tokens"] == 50
    assert "temperature" not in request.body


def test_chat_script_and_empty_answer(fake: FakeUpstage) -> None:
    fake.chat_script = deque(["Scripted [7]", ""])
    chat, _ = chat_for(fake)
    assert chat.complete([ChatMessage("user", "q")]).text == "Scripted [7]"
    with pytest.raises(UpstreamError, match="empty answer"):
        chat.complete([ChatMessage("user", "q")])
    fake.chat_script = lambda messages: "echo " + messages[-1]["content"]
    assert chat.complete([ChatMessage("user", "ping")]).text == "echo ping"
    with pytest.raises(InvalidInput):
        chat.complete([])


def test_chat_retries_then_maps_errors(fake: FakeUpstage) -> None:
    chat, client = chat_for(fake, upstage_max_retries=2)
    fake.fail_next(503, endpoint="chat")
    assert chat.complete([ChatMessage("user", "hi")]).text == "FAKE: hi"
    fake.fail_next(429, times=3, endpoint="chat")
    with pytest.raises(UpstreamRateLimited):
        chat.complete([ChatMessage("user", "hi")])
    assert client.stats.retries == 3


# -- rate limiting ---------------------------------------------------------------------------


def test_limiter_throttles_requests(fake: FakeUpstage) -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 10_000_000, clock=clock, sleep=clock.sleep)
    embedder, _ = embedder_for(fake, limiter=limiter, embedding_batch_size=1)
    embedder.embed([f"text {i}" for i in range(5)], P)
    # 5 requests at 2 per minute: the 5th may start once the 3rd has aged a minute.
    assert clock.now == pytest.approx(120.0)
    assert limiter.acquisitions == 5
    assert len(fake.embedding_requests()) == 5


def test_limiter_throttles_tokens(fake: FakeUpstage) -> None:
    clock = FakeClock()
    limiter = RateLimiter(1000, 500, clock=clock, sleep=clock.sleep)
    embedder, _ = embedder_for(fake, limiter=limiter, embedding_batch_tokens=512)
    text = "tokens " * 100
    embedder.embed([text + "a", text + "b", text + "c"], P)  # 2 + 1 per batch
    # The first batch is charged the server's count (2 x 176), the second its estimate (201).
    assert clock.now == pytest.approx(60.0)


def test_limiter_is_charged_the_servers_token_count(fake: FakeUpstage) -> None:
    clock = FakeClock()
    limiter = RateLimiter(1000, 10_000, clock=clock, sleep=clock.sleep)
    embedder, _ = embedder_for(fake, limiter=limiter)
    korean = "한국어 문장입니다 " * 50  # estimated 1 token per syllable, 4 characters per token served
    embedder.embed([korean], P)
    served = fake.embedding_requests()[0]
    assert limiter._tokens_in_window == sum(max(1, -(-len(t) // 4)) for t in served.inputs)
    assert limiter._tokens_in_window < estimate_tokens(korean)


def test_unusable_embeddings_body_is_an_upstream_error(fake: FakeUpstage) -> None:
    fake.fail_next(200, body={"object": "list", "data": "nope"})
    embedder, _ = embedder_for(fake)
    with pytest.raises(UpstreamError, match="unusable embeddings response"):
        embedder.embed(["hello"], P)


def test_server_rate_limit_is_recovered_with_retry_after(fake: FakeUpstage) -> None:
    fake.rpm = 2
    fake.time_scale = 0.005  # the server's "minute" lasts 0.3 s
    embedder, client = embedder_for(fake, sleep=time.sleep, embedding_batch_size=1,
                                    upstage_max_retries=6)
    vectors = embedder.embed([f"text {i}" for i in range(4)], P)
    assert len(vectors) == 4
    assert fake.rate_limited >= 1
    assert client.stats.rate_limited == fake.rate_limited


def test_client_limiter_prevents_server_429(fake: FakeUpstage) -> None:
    fake.rpm = 3
    fake.time_scale = 0.005
    # The client's window is a little longer than the server's: request latency skews them.
    limiter = RateLimiter(3, 10_000_000, window_seconds=0.36)
    embedder, _ = embedder_for(fake, sleep=time.sleep, limiter=limiter, embedding_batch_size=1)
    started = time.monotonic()
    embedder.embed([f"text {i}" for i in range(7)], P)
    assert fake.rate_limited == 0
    assert time.monotonic() - started >= 0.7  # two full windows had to pass


def test_key_is_read_per_request_so_a_rotated_key_is_used(fake: FakeUpstage) -> None:
    from solar_rag.adapters.upstage import UpstageClient, UpstageEmbedder
    from solar_rag.resilience.rate_limit import RateLimiter

    keys = ["up_OLD_placeholder_key_123"]
    rejected: list[bool] = []
    settings = Settings(_env_file=None, upstage_base_url=fake.base_url,
                        embedding_dimensions=fake.dimensions, upstage_max_retries=0)
    client = UpstageClient(settings, api_key=lambda: keys[-1],
                           on_key_rejected=lambda: rejected.append(True))
    embedder = UpstageEmbedder(client, settings, RateLimiter(1000, 10_000_000))
    with pytest.raises(UpstageKeyRejected) as info:
        embedder.embed(["hello"], P)
    assert info.value.status == 503 and rejected == [True]
    keys.append(KEY)  # the operator stores the real key; no restart
    assert len(embedder.embed(["hello"], P)) == 1
    assert fake.embedding_requests()[-1].headers["authorization"] == f"Bearer {KEY}"
