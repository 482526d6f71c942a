"""``"stream": true`` on /v1/query and /v1/chat: Server-Sent Events from the real app, real local
store and real Upstage adapter, against the fake Upstage server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from solar_rag.adapters.redaction import REDACTED
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.settings import Settings

from tests.fakes.upstage_server import FakeUpstage

KEY = "up_sse_stream_key_0123456789"
DOCUMENTS = [
    {"id": "leave.md", "title": "Leave", "content_type": "text/markdown",
     "text": "# Leave\n\nEmployees get 25 days of paid leave per year. Unused days expire in March."},
]
QUESTION = {"query": "How many days of paid leave?", "stream": True}


def events(body: str) -> list[tuple[str, dict[str, Any]]]:
    parsed = []
    for frame in body.split("\n\n"):
        if not frame.strip():
            continue
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        parsed.append((lines["event"], json.loads(lines["data"])))
    return parsed


@pytest.fixture(scope="module")
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=64) as fake:
        yield fake


def _settings(tmp: Any, upstage: FakeUpstage | None) -> Settings:
    if upstage is None:
        return Settings(_env_file=None, embedding_dimensions=64, rag_data_dir=tmp)
    return Settings(_env_file=None, upstage_api_key=KEY, upstage_base_url=upstage.base_url,
                    embedding_dimensions=64, rag_data_dir=tmp, upstage_timeout_seconds=2.0,
                    upstage_max_retries=1)


@pytest.fixture(scope="module")
def client(upstage: FakeUpstage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    container = Container(_settings(tmp_path_factory.mktemp("sse"), upstage))
    with TestClient(create_app(lambda: container), raise_server_exceptions=False) as test_client:
        assert test_client.post("/v1/documents", json={"documents": DOCUMENTS}).status_code == 200
        yield test_client


@pytest.fixture(autouse=True)
def fresh(upstage: FakeUpstage) -> Iterator[None]:
    upstage.reset()
    yield
    upstage.chat_script = None
    upstage.stream_break_after = None
    upstage.ignore_include_usage = False


def test_query_streams_sources_then_pieces_then_the_checked_answer(client: TestClient,
                                                                   upstage: FakeUpstage) -> None:
    upstage.chat_script = lambda _m: "Employees get 25 days [1][4] of leave [3]."
    response = client.post("/v1/query", json=QUESTION)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    stream = events(response.text)
    names = [name for name, _ in stream]
    assert names[0] == "citations" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) > 4
    sources = stream[0][1]["citations"]
    assert [(s["index"], s["document_id"], s["title"]) for s in sources] == [(1, "leave.md", "Leave")]
    assert "25 days of paid leave" in sources[0]["text"]
    # The pieces are the model's words as written; ``done`` carries the post-checked answer:
    # [4] and [3] name no retrieved source (one was retrieved) and are removed.
    assert "".join(data["text"] for name, data in stream if name == "delta") == \
        "Employees get 25 days [1][4] of leave [3]."
    done = stream[-1][1]
    assert done["answer"] == "Employees get 25 days [1] of leave."
    assert [c["index"] for c in done["citations"]] == [1]
    assert done["model"] == "solar-pro3" and done["usage"]["completion_tokens"] > 0
    sent = upstage.chat_requests()[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_without_stream_nothing_changes(client: TestClient) -> None:
    response = client.post("/v1/query", json={"query": "How many days of paid leave?"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json()["citations"][0]["document_id"] == "leave.md"


def test_stream_must_be_a_boolean(client: TestClient) -> None:
    assert client.post("/v1/query", json={**QUESTION, "stream": "true"}).status_code == 422
    assert client.post("/v1/chat", json={"messages": [{"role": "user", "content": "x"}],
                                         "stream": 1}).status_code == 422


def test_failure_before_the_stream_is_an_ordinary_http_error(client: TestClient, upstage: FakeUpstage) -> None:
    upstage.fail_next(503, times=2, endpoint="chat")
    response = client.post("/v1/query", json=QUESTION)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert "HTTP 503" in response.json()["detail"]
    assert len(upstage.chat_requests()) == 2  # connecting is retried like any Upstage call


def test_connecting_is_retried_after_a_rate_limit(client: TestClient, upstage: FakeUpstage) -> None:
    upstage.fail_next(429, headers={"retry-after-ms": "50"}, endpoint="chat")
    response = client.post("/v1/query", json=QUESTION)
    assert [name for name, _ in events(response.text)][-1] == "done"
    assert [r.status for r in upstage.chat_requests()] == [429, 200]


def test_a_stream_broken_off_upstream_ends_with_an_error_event(client: TestClient, upstage: FakeUpstage) -> None:
    upstage.stream_break_after = 2
    response = client.post("/v1/query", json=QUESTION)
    assert response.status_code == 200  # already started
    stream = events(response.text)
    assert [name for name, _ in stream] == ["citations", "delta", "delta", "error"]
    assert stream[-1][1] == {"detail": "The Upstage answer stream ended without finishing the answer",
                             "status": 502}


def test_a_refused_stream_options_is_asked_again_without_it(
        client: TestClient, upstage: FakeUpstage, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstage does not document ``stream_options``: if a request with it is refused (400),
    the stream is opened again without it, usage is estimated, and it is not sent again."""
    from solar_rag.adapters.upstage_stream import UpstageStreamingChatModel

    monkeypatch.setattr(UpstageStreamingChatModel, "_usage_chunk_refused", False)
    upstage.fail_next(400, message="Unrecognized request argument: stream_options", endpoint="chat")
    stream = events(client.post("/v1/query", json=QUESTION).text)
    assert [name for name, _ in stream][-1] == "done"
    assert stream[-1][1]["usage"]["total_tokens"] > 0
    first, second = upstage.chat_requests()
    assert first.status == 400 and "stream_options" in first.body
    assert second.status == 200 and "stream_options" not in second.body
    events(client.post("/v1/query", json=QUESTION).text)
    assert "stream_options" not in upstage.chat_requests()[-1].body


def test_a_400_for_another_reason_is_not_hidden(
        client: TestClient, upstage: FakeUpstage, monkeypatch: pytest.MonkeyPatch) -> None:
    from solar_rag.adapters.upstage_stream import UpstageStreamingChatModel

    monkeypatch.setattr(UpstageStreamingChatModel, "_usage_chunk_refused", False)
    upstage.fail_next(400, times=2, message="max_tokens is too large", endpoint="chat")
    response = client.post("/v1/query", json=QUESTION)
    assert response.status_code == 502 and "max_tokens is too large" in response.json()["detail"]
    assert UpstageStreamingChatModel._usage_chunk_refused is False


def test_usage_is_estimated_when_upstage_sends_none(client: TestClient, upstage: FakeUpstage) -> None:
    upstage.ignore_include_usage = True
    done = events(client.post("/v1/query", json=QUESTION).text)[-1][1]
    usage = done["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_the_key_never_leaves_in_a_piece_even_split_across_pieces(client: TestClient,
                                                                  upstage: FakeUpstage) -> None:
    spaced = " ".join(KEY[i:i + 5] for i in range(0, len(KEY), 5))  # one word per piece
    upstage.chat_script = lambda _m: f"The key is {KEY} and spelled out {spaced} ok [1]"
    stream = events(client.post("/v1/query", json=QUESTION).text)
    pieces = [data["text"] for name, data in stream if name == "delta"]
    assert len(pieces) > 5
    streamed = ""
    for piece in pieces:
        streamed += piece
        assert KEY[:5] not in streamed  # no prefix of the key ever went out
    assert streamed == f"The key is {REDACTED} and spelled out {REDACTED} ok [1]"
    assert KEY not in stream[-1][1]["answer"] and REDACTED in stream[-1][1]["answer"]


def test_no_sources_means_no_model_call(client: TestClient, upstage: FakeUpstage) -> None:
    response = client.post("/v1/query", json={**QUESTION, "filters": {"document_id": "nothing"}})
    stream = events(response.text)
    assert [name for name, _ in stream] == ["citations", "delta", "done"]
    assert stream[0][1] == {"citations": []} and stream[-1][1]["citations"] == []
    assert upstage.chat_requests() == []


def test_chat_streams_pieces_then_done(client: TestClient) -> None:
    response = client.post("/v1/chat", json={"messages": [{"role": "user", "content": "hello there"}],
                                             "stream": True})
    stream = events(response.text)
    assert [name for name, _ in stream] == ["delta", "delta", "delta", "done"]
    assert stream[-1][1]["answer"] == "FAKE: hello there"
    assert set(stream[-1][1]) == {"answer", "model", "usage"}


def test_chat_validation_happens_before_the_stream(client: TestClient, upstage: FakeUpstage) -> None:
    response = client.post("/v1/chat", json={"messages": [{"role": "system", "content": "x"}],
                                             "stream": True})
    assert response.status_code == 400
    assert response.json() == {"detail": "messages must contain a non-empty user message"}
    assert upstage.chat_requests() == []


def test_offline_provider_streams_the_extractive_answer_in_one_piece(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    container = Container(_settings(tmp_path_factory.mktemp("offline"), None))
    with TestClient(create_app(lambda: container), raise_server_exceptions=False) as offline:
        offline.post("/v1/documents", json={"documents": DOCUMENTS})
        stream = events(offline.post("/v1/query", json=QUESTION).text)
        assert [name for name, _ in stream] == ["citations", "delta", "done"]
        assert stream[1][1]["text"] == stream[2][1]["answer"]
        assert stream[2][1]["model"] == "offline-extractive"
        chat = offline.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}],
                                              "stream": True})
        assert chat.status_code == 503
