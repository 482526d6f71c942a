"""``/v1/chat/completions`` and ``/v1/models`` with the official ``openai`` SDK as the client,
used as its README shows with only ``base_url`` changed, against the app served by uvicorn on
127.0.0.1 (real local store, real Upstage adapter, the fake Upstage server)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.settings import Settings

from tests.fakes.live_server import serve
from tests.fakes.upstage_server import FakeUpstage

KEY = "up_openai_compat_0123456789"
DOCUMENTS = [
    {"id": "handbook/leave.md", "title": "Leave policy", "content_type": "text/markdown",
     "text": "# Leave\n\nEmployees get 25 days of paid leave per year. Unused days expire in March."},
    {"id": "handbook/travel.md", "title": "Travel", "content_type": "text/markdown",
     "text": "# Travel\n\nTrain tickets are booked through the travel desk two weeks ahead."},
]


@pytest.fixture(scope="module")
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=64) as fake:
        yield fake


@pytest.fixture(scope="module")
def base_url(upstage: FakeUpstage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(_env_file=None, upstage_api_key=KEY, upstage_base_url=upstage.base_url,
                        embedding_dimensions=64, rag_data_dir=tmp_path_factory.mktemp("openai"),
                        upstage_timeout_seconds=5.0, upstage_max_retries=1)
    container = Container(settings)
    with serve(create_app(lambda: container)) as url:
        assert httpx.post(f"{url}/v1/documents", json={"documents": DOCUMENTS},
                          timeout=30).status_code == 200
        yield f"{url}/v1"


@pytest.fixture(autouse=True)
def fresh(upstage: FakeUpstage) -> Iterator[None]:
    upstage.reset()
    upstage.chat_script = None
    upstage.stream_break_after = None
    yield
    upstage.chat_script = None
    upstage.stream_break_after = None


@pytest.fixture
def client(base_url: str) -> OpenAI:
    # As in the SDK's README, with base_url pointing at the service (no key is needed locally;
    # the SDK insists on one).
    return OpenAI(api_key="not-needed-locally", base_url=base_url)


def test_models_lists_the_rag_model_and_the_chat_model(client: OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids == ["solar-rag", "solar-pro3"]


def test_solar_rag_answers_from_the_documents_with_citations(client: OpenAI, upstage: FakeUpstage) -> None:
    completion = client.chat.completions.create(
        model="solar-rag",
        messages=[{"role": "user", "content": "How many days of paid leave do employees get?"}],
    )
    content = completion.choices[0].message.content
    assert content is not None and "25 days of paid leave" in content and content.endswith(" [1]")
    assert completion.model == "solar-rag"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    citations: list[dict[str, Any]] = (completion.model_extra or {})["citations"]
    assert [(c["index"], c["document_id"], c["title"]) for c in citations] == [
        (1, "handbook/leave.md", "Leave policy")]
    assert "25 days" in citations[0]["text"]
    # The question went to Upstage with the retrieved sources, not as a plain chat.
    sent = upstage.chat_requests()[0].body
    assert "25 days of paid leave" in sent["messages"][-1]["content"]


def test_solar_rag_streams_openai_chunks_with_sources_and_citations(client: OpenAI, upstage: FakeUpstage) -> None:
    upstage.chat_script = lambda _m: "Paid leave is 25 days [1] and travel is booked ahead [2][9]."
    stream = client.chat.completions.create(
        model="solar-rag",
        messages=[{"role": "user", "content": "Tell me about paid leave and travel."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paid leave is 25 days [1] and travel is booked ahead [2][9]."  # as written
    first, finish, usage = chunks[0], chunks[-2], chunks[-1]
    sources = (first.model_extra or {})["sources"]
    assert {s["document_id"] for s in sources} == {"handbook/leave.md", "handbook/travel.md"}
    assert [s["index"] for s in sources] == list(range(1, len(sources) + 1))
    assert finish.choices[0].finish_reason == "stop"
    cited = (finish.model_extra or {})["citations"]
    assert [c["index"] for c in cited] == [1, 2]  # [9] names no source: not a citation
    assert usage.choices == [] and usage.usage is not None and usage.usage.completion_tokens > 0
    assert upstage.chat_requests()[0].body["stream"] is True


def test_chat_model_passes_through_as_plain_chat(client: OpenAI, upstage: FakeUpstage) -> None:
    completion = client.chat.completions.create(
        model="solar-pro3",
        messages=[{"role": "developer", "content": "Be brief."},
                  {"role": "user", "content": "Say hello"}],
        max_completion_tokens=50,
    )
    assert completion.choices[0].message.content == "FAKE: Say hello"
    assert "citations" not in (completion.model_extra or {})
    sent = upstage.chat_requests()[0].body
    assert sent["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Say hello"}]
    assert sent["max_tokens"] == 50

    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="solar-pro3", messages=[{"role": "user", "content": "Say hello again"}], stream=True)
        if c.choices]
    assert "".join(pieces) == "FAKE: Say hello again" and len(pieces) > 2


def test_unknown_model_is_an_openai_not_found_error(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"
    assert "gpt-4o" in caught.value.message


def test_invalid_requests_are_openai_bad_request_errors(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="solar-rag", messages=[{"role": "user", "content": "hi"}], n=2)
    assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert caught.value.body["param"] == "n"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="last message must be a non-empty user message"):
        client.chat.completions.create(model="solar-rag", messages=[
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])


def test_upstream_failure_before_the_stream_is_an_openai_error(client: OpenAI, upstage: FakeUpstage) -> None:
    upstage.fail_next(500, times=2)
    with pytest.raises(openai.APIStatusError) as caught:
        client.with_options(max_retries=0).chat.completions.create(
            model="solar-rag", messages=[{"role": "user", "content": "paid leave?"}], stream=True)
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "server_error"  # type: ignore[index]


def test_a_stream_broken_off_upstream_raises_in_the_client(client: OpenAI, upstage: FakeUpstage) -> None:
    upstage.stream_break_after = 3
    stream = client.chat.completions.create(
        model="solar-rag", messages=[{"role": "user", "content": "paid leave?"}], stream=True)
    received: list[str] = []

    def read() -> None:
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError, match="Upstage answer stream ended without finishing"):
        read()
    assert "".join(received) == "Leave Employees get "
