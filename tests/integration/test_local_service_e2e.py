"""The real app over HTTP, the real local store, and a fake Upstage server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.settings import Settings

from tests.fakes.live_server import serve
from tests.fakes.upstage_server import FakeUpstage

KEY = "up-test-key-0123456789"

DOCS: list[dict[str, object]] = [
    {"id": "handbook/leave.md", "content_type": "text/markdown", "metadata": {"team": "hr"},
     "text": "# Leave policy\n\nEmployees get 25 days of paid leave per year.\n\n"
             "## Expiry\n\nUnused leave days expire at the end of March."},
    {"id": "handbook/office.html", "content_type": "text/html",
     "text": "<html><head><title>Office hours</title><script>var x=1;</script></head><body>"
             "<nav>Home | About</nav><h1>Office</h1><p>The office opens at 8:00 and closes "
             "at 19:00 on weekdays.</p></body></html>"},
    {"id": "kr/seoul.txt", "title": "서울", "metadata": {"lang": "ko"},
     "text": "서울은 대한민국의 수도이다. 서울의 인구는 약 940만 명이다."},
]


@pytest.fixture
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=256) as fake:
        yield fake


def make_settings(tmp_path: Path, upstage: FakeUpstage | None, **extra: object) -> Settings:
    values: dict[str, object] = {"rag_data_dir": tmp_path / "data", "embedding_dimensions": 256,
                                 "upstage_timeout_seconds": 1.0, "upstage_max_retries": 2}
    if upstage is not None:
        values |= {"upstage_api_key": KEY, "upstage_base_url": upstage.base_url}
    return Settings(_env_file=None, **(values | extra))  # type: ignore[arg-type]


@pytest.fixture
def api(tmp_path: Path, upstage: FakeUpstage) -> Iterator[httpx.Client]:
    container = Container(make_settings(tmp_path, upstage, embedding_batch_size=2))
    with serve(create_app(lambda: container)) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def index(client: httpx.Client, documents: list[dict[str, object]]) -> list[dict[str, object]]:
    response = client.post("/v1/documents", json={"documents": documents})
    assert response.status_code == 200, response.text
    result: list[dict[str, object]] = response.json()["documents"]
    return result


def test_index_and_ask_cites_the_right_document(api: httpx.Client, upstage: FakeUpstage) -> None:
    assert [d["status"] for d in index(api, DOCS)] == ["indexed"] * 3
    passages = upstage.embedding_requests()
    assert {r.model for r in passages} == {"solar-embedding-2-passage"}
    assert max(len(r.inputs) for r in passages) <= 2  # batched by EMBEDDING_BATCH_SIZE
    assert all(r.headers.get("authorization") == f"Bearer {KEY}" for r in passages)

    upstage.reset()
    body = api.post("/v1/query", json={"query": "How many days of paid leave do employees get?"}).json()
    assert body["citations"], body
    cited = {c["document_id"] for c in body["citations"]}
    assert "handbook/leave.md" in cited
    assert {r.model for r in upstage.embedding_requests()} == {"solar-embedding-2-query"}
    assert [r.model for r in upstage.chat_requests()] == ["solar-pro3"]
    for marker in range(1, 10):
        if f"[{marker}]" in body["answer"]:
            assert marker in {c["index"] for c in body["citations"]}

    korean = api.post("/v1/search", json={"query": "서울의 인구", "mode": "keyword"}).json()
    assert korean["results"][0]["document_id"] == "kr/seoul.txt"
    html = api.get("/v1/documents/handbook/office.html").json()
    assert html["title"] == "Office hours" and html["status"] == "indexed"
    texts = " ".join(r["text"] for r in api.post(
        "/v1/search", json={"query": "office opens", "top_k": 10}).json()["results"])
    assert "var x" not in texts and "Home | About" not in texts


def test_reindex_changed_leaves_no_stale_chunk_and_unchanged_makes_no_call(
        api: httpx.Client, upstage: FakeUpstage) -> None:
    index(api, DOCS)
    upstage.reset()
    assert {d["status"] for d in index(api, DOCS)} == {"unchanged"}
    assert upstage.embedding_requests() == []

    changed: dict[str, object] = {"id": "handbook/leave.md", "text": "Employees get 30 holiday days (zebra rule)."}
    assert index(api, [changed])[0]["status"] == "indexed"
    hits = api.post("/v1/search", json={"query": "expire March", "mode": "keyword",
                                        "filters": {"document_id": "handbook/leave.md"}}).json()
    assert hits["results"] == []
    found = api.post("/v1/search", json={"query": "zebra", "mode": "keyword"}).json()["results"]
    assert [r["document_id"] for r in found] == ["handbook/leave.md"]
    assert api.get("/v1/documents/handbook/leave.md").json()["chunks"] == 1

    assert api.delete("/v1/documents/handbook/leave.md").status_code == 204
    for mode in ("keyword", "vector", "hybrid"):
        results = api.post("/v1/search", json={"query": "zebra holiday days", "mode": mode,
                                               "top_k": 50}).json()["results"]
        assert "handbook/leave.md" not in {r["document_id"] for r in results}
    assert api.get("/v1/documents/handbook/leave.md").status_code == 404


def test_rate_limit_with_retry_after_is_honoured(api: httpx.Client, upstage: FakeUpstage) -> None:
    index(api, DOCS[:1])
    upstage.fail_next(429, times=1, headers={"Retry-After": "0.3"})
    response = api.post("/v1/search", json={"query": "paid leave"})
    assert response.status_code == 200
    assert upstage.faults_injected == 1


@pytest.mark.parametrize(("fault", "status"), [("429", 429), ("500", 502), ("timeout", 504)])
def test_persistent_upstream_failures_map_to_statuses(
        api: httpx.Client, upstage: FakeUpstage, fault: str, status: int) -> None:
    if fault == "timeout":
        upstage.delay_next(3.0, times=10)
    else:
        upstage.fail_next(int(fault), times=10, headers={"Retry-After": "0.05"})
    response = api.post("/v1/search", json={"query": "paid leave"})
    assert response.status_code == status, response.text
    assert KEY not in response.text and "Traceback" not in response.text


def test_offline_provider_end_to_end(tmp_path: Path) -> None:
    container = Container(make_settings(tmp_path, None))
    with serve(create_app(lambda: container)) as url, httpx.Client(base_url=url, timeout=30) as api:
        assert api.get("/v1/health").json()["provider"] == "offline"
        index(api, DOCS)
        body = api.post("/v1/query", json={"query": "When does the office open?"}).json()
        assert body["answer"].startswith("Offline extractive answer")
        assert body["citations"][0]["document_id"] == "handbook/office.html"
        nothing = api.post("/v1/query", json={"query": "quantum chromodynamics"}).json()
        assert nothing["citations"] == []
