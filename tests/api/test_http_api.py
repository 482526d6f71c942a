"""The real FastAPI app with in-memory fakes behind the ports: status codes, bodies, limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.errors import UpstreamRateLimited, UpstreamTimeout, VectorStoreError
from solar_rag.settings import Settings

from tests.fakes.memory import FakeChatModel, FakeEmbedder, MemoryRegistry, MemoryStore

SECRET = "up-SECRET-KEY-should-never-leak-123"


@pytest.fixture
def container() -> Container:
    settings = Settings(upstage_api_key=SECRET, _env_file=None)
    return Container(settings, chat_model=FakeChatModel(), embedder=FakeEmbedder(),
                     store=MemoryStore(), registry=MemoryRegistry())


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    app = create_app(lambda: container, max_request_bytes=200_000)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


DOCS = {"documents": [
    {"id": "guides/sky.md", "title": "Sky", "text": "# Sky\n\nThe sky is blue on a clear day.",
     "content_type": "text/markdown", "metadata": {"team": "weather", "year": 2024}},
    {"title": "Grass", "text": "Grass is green in spring."},
]}


def test_health_reports_provider_and_store(client: TestClient) -> None:
    assert client.get("/v1/health").json() == {"status": "ok", "provider": "upstage",
                                                "vector_store": "local"}


def test_index_then_query_cites_the_document(client: TestClient, container: Container) -> None:
    indexed = client.post("/v1/documents", json=DOCS)
    assert indexed.status_code == 200, indexed.text
    documents = indexed.json()["documents"]
    assert documents[0] == {"id": "guides/sky.md", "status": "indexed", "chunks": 1}
    assert documents[1]["id"].startswith("doc-")
    again = client.post("/agent/knowledge", json=DOCS).json()["documents"]
    assert {d["status"] for d in again} == {"unchanged"}

    answer = client.post("/v1/query", json={"query": "what colour is the sky", "top_k": 2})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "fake-solar" and body["usage"]["total_tokens"] == 15
    assert body["citations"][0]["index"] == 1
    assert body["citations"][0]["document_id"] == "guides/sky.md"
    assert client.post("/agent/query", json={"query": "sky colour"}).status_code == 200


def test_a_rejected_document_fails_the_request_and_the_others_are_indexed(
        client: TestClient, container: Container) -> None:
    store = container.store
    assert isinstance(store, MemoryStore)
    store.reject_documents["guides/sky.md"] = VectorStoreError(
        "1 of 1 chunks of document 'guides/sky.md' were not written")
    response = client.post("/v1/documents", json={"documents": [
        DOCS["documents"][0], {"id": "grass.txt", "text": "Grass is green in spring."}]})
    assert response.status_code == 502
    assert "guides/sky.md" in response.json()["detail"]
    sky = client.get("/v1/documents/guides/sky.md").json()
    assert sky["status"] == "failed" and "not written" in sky["error"]
    assert client.get("/v1/documents/grass.txt").json()["status"] == "indexed"

    del store.reject_documents["guides/sky.md"]
    again = client.post("/v1/documents", json={"documents": [
        DOCS["documents"][0], {"id": "grass.txt", "text": "Grass is green in spring."}]})
    assert [d["status"] for d in again.json()["documents"]] == ["indexed", "unchanged"]


def test_document_ids_with_slashes(client: TestClient) -> None:
    client.post("/v1/documents", json=DOCS)
    shown = client.get("/v1/documents/guides/sky.md")
    assert shown.status_code == 200
    assert shown.json()["metadata"] == {"team": "weather", "year": 2024}
    assert shown.json()["status"] == "indexed"
    assert client.get("/v1/documents/guides%2Fsky.md").status_code == 200
    assert client.delete("/v1/documents/guides/sky.md").status_code == 204
    assert client.get("/v1/documents/guides/sky.md").status_code == 404
    assert client.delete("/v1/documents/guides/sky.md").json() == {
        "detail": "document 'guides/sky.md' not found"}


def test_list_documents_paginates(client: TestClient) -> None:
    client.post("/v1/documents", json={"documents": [{"id": f"d{i}", "text": f"text {i}"}
                                                     for i in range(5)]})
    first = client.get("/v1/documents", params={"limit": 2}).json()
    assert [d["id"] for d in first["documents"]] == ["d0", "d1"]
    second = client.get("/v1/documents", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [d["id"] for d in second["documents"]] == ["d2", "d3"]
    assert client.get("/v1/documents", params={"limit": 0}).status_code == 422


def test_search_returns_scored_results_with_filters(client: TestClient) -> None:
    client.post("/v1/documents", json=DOCS)
    results = client.post("/v1/search", json={"query": "sky blue", "filters": {"team": "weather"},
                                               "mode": "vector"}).json()["results"]
    assert [r["document_id"] for r in results] == ["guides/sky.md"]
    assert set(results[0]) == {"document_id", "chunk_id", "text", "score", "title", "source",
                               "metadata", "page", "page_end", "section"}


def test_chat_and_embeddings(client: TestClient) -> None:
    chat = client.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code == 200 and chat.json()["answer"]
    emb = client.post("/v1/embeddings", json={"input": ["a", "b"], "kind": "passage"}).json()
    assert emb["model"] == "fake-passage" and emb["dimensions"] == 64
    assert [d["index"] for d in emb["data"]] == [0, 1] and len(emb["data"][0]["embedding"]) == 64


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/query", {"query": ""}, 422),
        ("/v1/query", {"query": "x" * 100_000}, 422),
        ("/v1/query", {"query": "ok", "top_k": 0}, 422),
        ("/v1/query", {"query": "ok", "mode": "semantic"}, 422),
        ("/v1/query", {"query": 42}, 422),
        ("/v1/query", {"query": "   "}, 422),
        ("/v1/search", {"query": "ok", "filters": {"k": []}}, 422),
        ("/v1/documents", {"documents": []}, 422),
        ("/v1/documents", {"documents": [{"text": ""}]}, 422),
        ("/v1/documents", {"documents": [{"text": " \n "}]}, 422),
        ("/v1/documents", {"documents": [{"id": "a\nb", "text": "x"}]}, 422),
        ("/v1/documents", {"documents": [{"id": "..", "text": "x"}]}, 422),
        ("/v1/documents", {"documents": [{"text": "x", "content_type": "application/pdf"}]}, 422),
        ("/v1/documents", {"documents": [{"text": "x", "unknown": 1}]}, 422),
        ("/v1/chat", {"messages": []}, 422),
        ("/v1/chat", {"messages": [{"role": "tool", "content": "x"}]}, 422),
        ("/v1/chat", {"messages": [{"role": "system", "content": "only system"}]}, 400),
    ],
)
def test_bad_input_gets_clear_client_errors(client: TestClient, path: str, body: object,
                                            status: int) -> None:
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    assert "detail" in response.json()
    assert "Traceback" not in response.text


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/v1/query", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_oversized_body_is_413_before_parsing(client: TestClient) -> None:
    response = client.post("/v1/documents", json={"documents": [{"text": "x" * 300_000}]})
    assert response.status_code == 413
    assert response.json() == {"detail": "request body is larger than 200000 bytes"}


def test_oversized_chunked_body_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"x" * 10_000

    response = client.post("/v1/documents", content=chunks(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("error", "status"),
    [(UpstreamRateLimited("Upstage rate limit exceeded"), 429),
     (UpstreamTimeout("Upstage did not answer in 25 s"), 504)],
)
def test_upstream_failures_map_to_statuses(client: TestClient, container: Container,
                                           error: Exception, status: int) -> None:
    container.embedder.fail_with = error  # type: ignore[attr-defined]
    response = client.post("/v1/search", json={"query": "sky"})
    assert response.status_code == status
    assert response.json() == {"detail": str(error)}


def test_unexpected_errors_are_opaque_500s(client: TestClient, container: Container) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"internal detail {SECRET}")

    container.store.search = boom  # type: ignore[method-assign, assignment]
    response = client.post("/v1/search", json={"query": "sky"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert SECRET not in response.text


def test_offline_provider_chat_is_503_with_reason() -> None:
    container = Container(Settings(_env_file=None), embedder=FakeEmbedder(),
                          store=MemoryStore(), registry=MemoryRegistry())
    with TestClient(create_app(lambda: container)) as client:
        assert client.get("/v1/health").json()["provider"] == "offline"
        response = client.post("/v1/chat", json={"messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 503
    assert "UPSTAGE_API_KEY" in response.json()["detail"]


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/health", "/v1/chat", "/v1/embeddings", "/v1/documents",
            "/v1/documents/{document_id}", "/v1/search", "/v1/query", "/agent/knowledge",
            "/agent/query"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_uploads_are_not_available_without_a_documents_bucket(client: TestClient) -> None:
    response = client.post("/v1/uploads", json={"id": "manual.pdf"})
    assert response.status_code == 501
    assert "documents bucket" in response.json()["detail"] and "rag index" in response.json()["detail"]

