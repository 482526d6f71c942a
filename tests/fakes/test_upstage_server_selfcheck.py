"""The fake Upstage server itself: robustness and the features other tests rely on."""

from __future__ import annotations

import base64
import contextlib
import json
import struct
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from solar_rag.adapters.offline_embedder import HashingEmbedder
from solar_rag.domain import Chunk, EmbeddingKind, SearchHit
from solar_rag.services.prompt import build_messages

from tests.fakes.upstage_server import FakeUpstage, grounded_reply


@pytest.fixture
def fake() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key="k") as server:
        yield server


def post(fake: FakeUpstage, path: str, payload: bytes, *, key: str | None = "k",
         method: str = "POST") -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{fake.port}{path}", data=payload, method=method,
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {key}"} if key else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_bad_requests_get_openai_style_errors_and_server_survives(fake: FakeUpstage) -> None:
    cases = [
        ("/v1/embeddings", b"{not json", 400),
        ("/v1/embeddings", b'{"model": "m", "input": []}', 400),
        ("/v1/embeddings", b'{"model": "m", "input": [1, 2]}', 400),
        ("/v1/embeddings", b'{"input": ["x"]}', 400),
        ("/v1/chat/completions", b'{"model": "m", "messages": [{"role": "x", "content": "a"}]}',
         400),
        ("/v1/chat/completions", b'{"model": "m", "messages": "hi"}', 400),
        ("/v1/chat/completions", b'[1, 2, 3]', 400),
        ("/v1/unknown", b"{}", 404),
    ]
    for path, payload, status in cases:
        got, _, body = post(fake, path, payload)
        assert got == status, (path, payload)
        assert set(body["error"]) == {"message", "type", "param", "code"}
    got, _, _ = post(fake, "/v1/embeddings", b'{"model": "m", "input": "ok"}')
    assert got == 200


def test_authorization_required(fake: FakeUpstage) -> None:
    status, _, body = post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}', key=None)
    assert status == 401
    assert body["error"]["code"] == "invalid_api_key"
    status, _, _ = post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}', key="nope")
    assert status == 401
    assert [r.status for r in fake.embedding_requests()] == [401, 401]


def test_embedding_response_shape_and_base64(fake: FakeUpstage) -> None:
    status, _, body = post(fake, "/v1/embeddings",
                           b'{"model": "solar-embedding-2-passage", "input": ["a b", "c"]}')
    assert status == 200
    assert body["object"] == "list"
    assert body["model"] == "solar-embedding-2-passage"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["data"][0]["object"] == "embedding"
    expected = HashingEmbedder(1024).embed(["a b"], EmbeddingKind.PASSAGE)[0]
    assert body["data"][0]["embedding"] == pytest.approx(expected)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    payload = b'{"model": "m", "input": "a b", "encoding_format": "base64"}'
    _, _, encoded = post(fake, "/v1/embeddings", payload)
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert list(struct.unpack("<1024f", raw)) == pytest.approx(expected, abs=1e-6)


def test_grounded_reply_understands_the_project_prompt() -> None:
    hits = [
        SearchHit(Chunk("d1", "c1", 0, "Paris is the capital of France. It has museums.",
                        "Cities", "Europe", 0, 10, "v"), 0.9),
        SearchHit(Chunk("d2", "c2", 0, "Berlin is in Germany.", None, None, 0, 10, "v"), 0.5),
    ]
    messages = [{"role": m.role, "content": m.content}
                for m in build_messages("capital of France?", hits)]
    assert grounded_reply(messages) == "Paris is the capital of France. [1]"
    assert grounded_reply([{"role": "user", "content": "x" * 200}]).startswith("FAKE: xxx")
    assert len(grounded_reply([{"role": "user", "content": "x" * 200}])) == 6 + 80


def test_chat_stream(fake: FakeUpstage) -> None:
    client = openai.OpenAI(api_key="k", base_url=fake.base_url, max_retries=0, timeout=5)
    stream = client.chat.completions.create(
        model="solar-pro3", messages=[{"role": "user", "content": "stream this please"}],
        stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "FAKE: stream this please"


def test_chat_stream_usage_chunk_word_pieces_and_delay(fake: FakeUpstage) -> None:
    client = openai.OpenAI(api_key="k", base_url=fake.base_url, max_retries=0, timeout=5)
    fake.stream_token_delay = 0.05
    started = time.monotonic()
    chunks = list(client.chat.completions.create(
        model="solar-pro3", messages=[{"role": "user", "content": "one two three"}],
        stream=True, stream_options={"include_usage": True}))
    elapsed = time.monotonic() - started
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["FAKE: ", "one ", "two ", "three"]
    assert elapsed >= 4 * 0.05
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-2].usage is None
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5  # ceil(len("FAKE: one two three") / 4)


def test_chat_stream_options_are_checked_like_openai(fake: FakeUpstage) -> None:
    client = openai.OpenAI(api_key="k", base_url=fake.base_url, max_retries=0, timeout=5)
    messages: Any = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.BadRequestError, match="only allowed when 'stream' is enabled"):
        client.chat.completions.create(model="m", messages=messages,
                                       stream_options={"include_usage": True})
    with pytest.raises(openai.BadRequestError, match="'stream' must be a boolean"):
        client.chat.completions.create(model="m", messages=messages, extra_body={"stream": "yes"})


def test_chat_stream_can_break_off(fake: FakeUpstage) -> None:
    client = openai.OpenAI(api_key="k", base_url=fake.base_url, max_retries=0, timeout=5)
    fake.stream_break_after = 1
    chunks = list(client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "a b c"}], stream=True))
    assert [c.choices[0].finish_reason for c in chunks] == [None, None]  # no finish, no [DONE]


def test_chaos_is_seeded_and_counted(fake: FakeUpstage) -> None:
    def run() -> list[int | None]:
        fake.reset()
        fake.chaos(0.5, seed=42, kinds=("429", "500"))
        for _ in range(20):
            post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}')
        return [r.status for r in fake.embedding_requests()]

    first, second = run(), run()
    assert first == second
    assert fake.faults_injected == sum(1 for s in first if s != 200)
    assert {429, 500, 200} == set(first)


def test_scripted_faults_respect_endpoint(fake: FakeUpstage) -> None:
    fake.fail_next(503, endpoint="chat")
    status, _, _ = post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}')
    assert status == 200
    chat = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    status, _, _ = post(fake, "/v1/chat/completions", chat)
    assert status == 503
    assert fake.faults_injected == 1


def test_rate_limit_enforcement_answers_429_with_retry_after(fake: FakeUpstage) -> None:
    fake.rpm = 2
    fake.time_scale = 0.01  # 0.6 s window
    statuses = []
    headers: dict[str, str] = {}
    for _ in range(3):
        status, headers, _ = post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}')
        statuses.append(status)
    assert statuses == [200, 200, 429]
    assert fake.rate_limited == 1
    wait_ms = int(headers["retry-after-ms"])
    assert 0 < wait_ms <= 600
    assert headers["retry-after"] == "1"
    time.sleep(wait_ms / 1000 + 0.02)
    assert post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}')[0] == 200


def test_tpm_enforcement(fake: FakeUpstage) -> None:
    fake.tpm = 10  # 40 characters
    fake.time_scale = 0.01
    body = json.dumps({"model": "m", "input": "x" * 24}).encode()  # 6 tokens
    assert post(fake, "/v1/embeddings", body)[0] == 200
    assert post(fake, "/v1/embeddings", body)[0] == 429


def test_latency_and_prompt_stop_with_pending_delay(fake: FakeUpstage) -> None:
    fake.latency = 0.2
    started = time.monotonic()
    post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}')
    assert time.monotonic() - started >= 0.2
    fake.latency = 0.0
    fake.delay_next(30)
    def slow_call() -> None:
        with contextlib.suppress(Exception):
            post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}')

    worker = threading.Thread(target=slow_call, daemon=True)
    worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2.0


def test_concurrent_requests_are_all_recorded(fake: FakeUpstage) -> None:
    def hit() -> None:
        for _ in range(10):
            post(fake, "/v1/embeddings", b'{"model": "m", "input": "x"}')

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(fake.embedding_requests()) == 40
