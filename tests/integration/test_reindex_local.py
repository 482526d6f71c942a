"""`rag reindex` on the local store (issue 16 B): a populated store moved from one embedding
setting to another while queries run, writes during the rebuild kept, the swap atomic,
rollback, failures refusing the swap, and the space check through the API."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from solar_rag.adapters.local_store.generations import read_generations
from solar_rag.api.app import create_app
from solar_rag.cli import main
from solar_rag.composition import Container
from solar_rag.domain import SearchMode, SourceDocument
from solar_rag.errors import SpaceMismatch
from solar_rag.reindexing import run_reindex
from solar_rag.settings import Settings, get_settings

DOCUMENTS = 24


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("UPSTAGE_API_KEY", "UPSTAGE_SECRET_ID", "EMBEDDING_DIMENSIONS",
                 "CHUNK_SIZE_TOKENS", "VECTOR_STORE"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def settings(data: Path, dimensions: int = 64, chunk: int = 400) -> Settings:
    return Settings(_env_file=None, rag_data_dir=data, embedding_dimensions=dimensions,
                    chunk_size_tokens=chunk)


def document(number: int, extra: str = "") -> SourceDocument:
    body = "\n\n".join(f"Paragraph {p} of document {number}: orchard{number} grows apples "
                       f"and pears, harvest week {p}. {extra}" for p in range(12))
    return SourceDocument(id=f"docs/d{number}.md", text=f"# Orchard {number}\n\n{body}",
                          content_type="text/markdown", metadata={"n": number})


def populate(data: Path) -> Container:
    container = Container(settings(data))
    container.indexing_service.index_many([document(n) for n in range(DOCUMENTS)])
    return container


def found(container: Container, query: str) -> list[str]:
    hits = container.search_service.search(query, top_k=3, mode=SearchMode.KEYWORD, filters={})
    return [hit.chunk.document_id for hit in hits]


def listed(container: Container) -> set[str]:
    return {record.id for record in container.registry.list(limit=1000)[0]}


def test_switches_dimensions_and_chunker_while_queries_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = populate(data)
    client = TestClient(create_app(lambda: old))
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            response = client.post("/v1/search", json={"query": "orchard7 apples", "top_k": 3})
            statuses.append(response.status_code)
            assert response.json()["results"], response.text

    runner = threading.Thread(target=load)
    runner.start()
    try:
        report = run_reindex(settings(data, dimensions=96, chunk=200))
        with_load_after = len(statuses)
        while len(statuses) < with_load_after + 5:  # queries after the swap, same server
            stop.wait(0.01)
    finally:
        stop.set()
        runner.join()
    assert report.swapped and report.rebuilt == DOCUMENTS and not report.failed
    assert len(statuses) > 5 and set(statuses) == {200}  # zero failed queries

    generations = read_generations(data)
    assert generations.live == "gen-2/rag.sqlite3" and generations.previous == "rag.sqlite3"
    new = Container(settings(data, dimensions=96, chunk=200))  # a reader opened after the swap
    assert new.store.path == data / "gen-2" / "rag.sqlite3"  # type: ignore[attr-defined]
    assert found(new, "orchard7")[0] == "docs/d7.md"
    assert new.store.recorded_space().dimensions == 96  # type: ignore[attr-defined]
    # chunked again with the new chunker: smaller chunks, more of them
    old_chunks = old.registry.get("docs/d7.md")
    new_chunks = new.registry.get("docs/d7.md")
    assert old_chunks and new_chunks and new_chunks.chunks > old_chunks.chunks
    # The old server still reads its file, but its writes are refused, never lost silently.
    response = client.post("/v1/documents", json={"documents": [
        {"id": "late", "text": "written to the replaced store"}]})
    assert response.status_code == 409 and "rag reindex" in response.json()["detail"]
    assert new.registry.get("late") is None and old.registry.get("late") is None


def test_writes_during_the_rebuild_reach_the_new_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = populate(data)
    writes_done = threading.Event()

    def meanwhile(done: int, total: int, label: str) -> None:
        if writes_done.is_set() or done == 0:
            return
        writes_done.set()  # the live service writes while the target is being built
        old.indexing_service.index(document(3, extra="updated: plums"))
        old.indexing_service.delete("docs/d5.md")
        old.indexing_service.index(document(99))

    report = run_reindex(settings(data, dimensions=96), on_progress=meanwhile)
    assert writes_done.is_set() and report.swapped and not report.failed
    assert report.deleted == 1 and report.passes >= 3
    new = Container(settings(data, dimensions=96))
    assert found(new, "plums") == ["docs/d3.md"] * len(found(new, "plums"))
    assert found(new, "plums")
    gone = new.registry.get("docs/d5.md")
    assert (gone is None or gone.status == "deleted") and not found(new, "orchard5")
    assert found(new, "orchard99")[0] == "docs/d99.md"
    assert len(listed(new)) == DOCUMENTS


def test_a_document_without_a_source_refuses_the_swap_unless_forced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    populate(data)
    with sqlite3.connect(data / "rag.sqlite3") as conn:  # indexed before texts were kept
        conn.execute("DELETE FROM sources WHERE document_id = 'docs/d2.md'")
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "96")
    assert main(["reindex"]) == 1
    out, err = capsys.readouterr()
    assert "failed: docs/d2.md: no source of truth" in err and "not swapped" in err
    assert '"swapped": false' in out and read_generations(data).live == "rag.sqlite3"
    # the old store still serves, with its own settings
    assert found(Container(settings(data)), "orchard2")[0] == "docs/d2.md"

    assert main(["reindex"]) == 1  # again: resumes into the same target, still refuses
    assert '"resumed": true' in capsys.readouterr().out
    assert main(["reindex", "--force"]) == 0
    assert '"swapped": true' in capsys.readouterr().out
    new = Container(settings(data, dimensions=96))
    assert "docs/d2.md" not in listed(new) and "docs/d1.md" in listed(new)


def test_rollback_restores_the_previous_store_with_what_was_written_since(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(data)
    assert run_reindex(settings(data, dimensions=96)).swapped
    new = Container(settings(data, dimensions=96))
    new.indexing_service.index(document(50))
    new.indexing_service.delete("docs/d1.md")

    with pytest.raises(SpaceMismatch, match="previous store was built with"):
        run_reindex(settings(data, dimensions=96), rollback=True)
    report = run_reindex(settings(data), rollback=True)
    assert report.swapped and report.rebuilt == 1 and report.deleted == 1
    assert report.unchanged == DOCUMENTS - 1
    assert read_generations(data).live == "rag.sqlite3"
    back = Container(settings(data))
    assert found(back, "orchard50")[0] == "docs/d50.md"
    assert "docs/d1.md" not in listed(back) and not found(back, "orchard1")
    with pytest.raises(SpaceMismatch):
        Container(settings(data, dimensions=96)).store  # noqa: B018


def test_the_api_refuses_another_space_naming_rag_reindex(tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(data)
    other = TestClient(create_app(lambda: Container(settings(data, chunk=200))))
    for response in (other.post("/v1/search", json={"query": "apples"}),
                     other.post("/v1/query", json={"query": "apples"}),
                     other.post("/v1/documents", json={"documents": [{"text": "new"}]})):
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert "rag reindex" in detail and "chunker-v1:200:60" in detail


def test_a_store_without_a_recorded_chunker_takes_the_current_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(data).store.close()  # type: ignore[attr-defined]
    with sqlite3.connect(data / "rag.sqlite3") as conn:  # a store made before the record
        conn.execute("DELETE FROM meta WHERE key = 'chunker'")
    assert found(Container(settings(data, chunk=200)), "orchard4")  # taken as current
    with sqlite3.connect(data / "rag.sqlite3") as conn:
        (recorded,) = conn.execute("SELECT value FROM meta WHERE key = 'chunker'").fetchone()
    assert recorded == "chunker-v1:200:60"
    with pytest.raises(SpaceMismatch):
        Container(settings(data)).store  # noqa: B018


def test_reindex_to_upstage_goes_through_its_client_and_limits(tmp_path: Path) -> None:
    """From the offline provider to Upstage (fake server): the passage model, batches within
    EMBEDDING_BATCH_SIZE, a 429 with Retry-After honoured by the same client as indexing."""
    from tests.fakes.upstage_server import FakeUpstage

    data = tmp_path / "data"
    populate(data)
    with FakeUpstage(api_key="up-test", dimensions=32) as fake:
        upstage = Settings(_env_file=None, rag_data_dir=data, embedding_dimensions=32,
                           upstage_api_key="up-test", upstage_base_url=fake.base_url,
                           upstage_max_retries=2, embedding_batch_size=8)
        fake.fail_next(429, headers={"Retry-After": "0"}, endpoint="embeddings")
        report = run_reindex(upstage)
        requests = fake.embedding_requests()
    assert report.swapped and report.rebuilt == DOCUMENTS and fake.rate_limited == 0
    assert {request.model for request in requests} == {"solar-embedding-2-passage"}
    assert max(len(request.inputs) for request in requests) <= 8
    assert fake.faults_injected == 1 and len(requests) >= 2
    assert Container(upstage).store.recorded_space().embedder == (  # type: ignore[attr-defined]
        "upstage:solar-embedding-2-passage:32")
