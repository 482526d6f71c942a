"""CORS on real answers, not only on the preflight: browser-shaped requests (an ``Origin``
header, a preflight, then the actual request) against the app and against the Lambda edge
with an API Gateway REST proxy event, origins configured once (``CORS_ALLOWED_ORIGINS``, set
by the CDK stack from its ``cors_origins`` context)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.settings import Settings

from tests.fakes import events
from tests.fakes.memory import FakeChatModel, FakeEmbedder, MemoryRegistry, MemoryStore

ALLOWED = "https://app.example.com"
OTHER_ALLOWED = "https://admin.example.com"
FOREIGN = "https://evil.example.net"


def _container() -> Container:
    settings = Settings(upstage_api_key="up-test-key", _env_file=None)
    return Container(settings, chat_model=FakeChatModel(), embedder=FakeEmbedder(),
                     store=MemoryStore(), registry=MemoryRegistry())


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[TestClient]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", f"{ALLOWED}, {OTHER_ALLOWED}")
    container = _container()
    app = create_app(lambda: container, max_request_bytes=2_000)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_actual_request_from_an_allowed_origin_gets_its_origin_back(client: TestClient) -> None:
    response = client.get("/v1/health", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "origin" in response.headers.get("vary", "").lower()
    other = client.get("/v1/health", headers={"Origin": OTHER_ALLOWED})
    assert other.headers["access-control-allow-origin"] == OTHER_ALLOWED


def test_preflight_then_post_from_an_allowed_origin(client: TestClient) -> None:
    preflight = client.options("/v1/documents", headers={
        "Origin": ALLOWED, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed_headers = preflight.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed_headers and "x-api-key" in allowed_headers
    posted = client.post("/v1/documents", headers={"Origin": ALLOWED},
                         json={"documents": [{"id": "a.md", "text": "Alpha beta gamma."}]})
    assert posted.status_code == 200
    assert posted.headers["access-control-allow-origin"] == ALLOWED


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("GET", "/v1/documents/missing.md", None, 404),
    ("POST", "/v1/search", {"query": ""}, 422),
    ("POST", "/v1/documents", {"documents": [{"text": "x" * 5_000}]}, 413),
])
def test_errors_carry_the_header_too(client: TestClient, method: str, path: str,
                                     body: Any, status: int) -> None:
    response = client.request(method, path, json=body, headers={"Origin": ALLOWED})
    assert response.status_code == status
    assert response.headers["access-control-allow-origin"] == ALLOWED


def test_unexpected_500_carries_the_header(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", ALLOWED)
    container = _container()

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(container.store, "search", broken)
    app = create_app(lambda: container)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.post("/v1/search", json={"query": "alpha"}, headers={"Origin": ALLOWED})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert response.headers["access-control-allow-origin"] == ALLOWED


def test_foreign_origin_gets_no_cors_header(client: TestClient) -> None:
    response = client.get("/v1/health", headers={"Origin": FOREIGN})
    assert response.status_code == 200  # CORS is enforced by the browser, not the server
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/v1/health", headers={
        "Origin": FOREIGN, "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers


def test_no_origins_configured_means_no_cors(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS", raising=False)
    container = _container()
    with TestClient(create_app(lambda: container)) as test_client:
        response = test_client.get("/v1/health", headers={"Origin": ALLOWED})
    assert "access-control-allow-origin" not in response.headers


def test_lambda_edge_answers_a_browser_shaped_proxy_event(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Any) -> None:
    """The deployed shape: API Gateway REST proxy event in, Lambda proxy response out."""
    from solar_rag.lambda_edge import runtime as lambda_runtime

    monkeypatch.chdir(tmp_path)
    for name in ("UPSTAGE_API_KEY", "UPSTAGE_SECRET_ID", "OPENSEARCH_ENDPOINT", "OPENSEARCH_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", ALLOWED)
    monkeypatch.setenv("VECTOR_STORE", "local")
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "rag"))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", events.REGION)
    lambda_runtime.reset()
    try:
        handler = lambda_runtime.http_function("chat", routers=("health", "chat"))
        context = events.lambda_context("solar-rag-chat")
        ok = handler(events.api_event("GET", "/v1/health", headers={"Origin": ALLOWED}), context)
        assert ok["statusCode"] == 200
        assert _header(ok, "access-control-allow-origin") == ALLOWED
        # Offline provider: chat is 503 "not configured", an error the browser must be able to read.
        failed = handler(events.api_event(
            "POST", "/v1/chat", body={"messages": [{"role": "user", "content": "hi"}]},
            headers={"Origin": ALLOWED, "Content-Type": "application/json"}), context)
        assert failed["statusCode"] == 503
        assert _header(failed, "access-control-allow-origin") == ALLOWED
    finally:
        lambda_runtime.reset()


def _header(response: dict[str, Any], name: str) -> str | None:
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name and values:
            return str(values[0])
    return None
