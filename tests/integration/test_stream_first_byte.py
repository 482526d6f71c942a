"""Done-when of issue 14: through ``rag serve`` (uvicorn on 127.0.0.1) and a client reading
the body as it arrives, the first piece of the answer comes long before the whole answer, with
a slow Upstage (50 ms per word of the answer)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.rag_serve import rag_serve
from tests.fakes.upstage_server import FakeUpstage

KEY = "up_stream_test_key_0123456789"
TOKEN_DELAY = 0.05
WORDS = 60
DOCUMENT = {"id": "handbook/leave.md", "content_type": "text/markdown",
            "text": "# Leave\n\nEmployees get 25 days of paid leave per year. Unused days expire in March."}


@pytest.fixture(scope="module")
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=64) as fake:
        yield fake


@pytest.fixture(scope="module")
def served(upstage: FakeUpstage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("serve")
    env = {"UPSTAGE_API_KEY": KEY, "UPSTAGE_BASE_URL": upstage.base_url,
           "EMBEDDING_DIMENSIONS": "64", "RAG_DATA_DIR": str(workdir / "data")}
    with rag_serve(env, cwd=workdir) as url:
        indexed = httpx.post(f"{url}/v1/documents", json={"documents": [DOCUMENT]}, timeout=30)
        assert indexed.status_code == 200, indexed.text
        yield url


def _events(lines: Iterator[str], clock: dict[str, float], started: float) -> Iterator[tuple[str, dict[str, object]]]:
    name = "message"
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            clock.setdefault(name, time.monotonic() - started)
            yield name, json.loads(line[5:])


def test_the_first_answer_byte_arrives_before_a_fifth_of_the_answer_time(
        served: str, upstage: FakeUpstage) -> None:
    answer = " ".join(f"word{n}" for n in range(WORDS - 1)) + " [1]"
    upstage.chat_script = lambda _messages: answer
    upstage.stream_token_delay = TOKEN_DELAY
    try:
        clock: dict[str, float] = {}
        names: list[str] = []
        started = time.monotonic()
        with httpx.stream("POST", f"{served}/v1/query", json={"query": "paid leave?", "stream": True},
                          timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = list(_events(response.iter_lines(), clock, started))
        total = time.monotonic() - started
    finally:
        upstage.stream_token_delay = 0.0
        upstage.chat_script = None
    names = [name for name, _ in events]
    assert names[0] == "citations" and names[-1] == "done" and names.count("delta") == WORDS
    done = events[-1][1]
    assert done["answer"] == answer
    first_answer_byte = clock["delta"]
    print(f"\nfirst citations {clock['citations'] * 1000:.0f} ms, first answer byte "
          f"{first_answer_byte * 1000:.0f} ms, whole answer {total * 1000:.0f} ms "
          f"({WORDS} words at {TOKEN_DELAY * 1000:.0f} ms)")
    assert total >= WORDS * TOKEN_DELAY  # the slow model really was slow
    assert first_answer_byte < total / 5
