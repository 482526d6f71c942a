"""One place for limits (settings ``Limits``): the OpenAPI document publishes the configured
values, the API refuses what is over them (422/400/413), and a limit out of bounds fails at
start-up. Nothing is cut silently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.errors import NotConfigured
from solar_rag.lambda_edge import runtime as lambda_runtime
from solar_rag.settings import Limits, Settings, current_limits, get_settings

from tests.fakes.memory import FakeChatModel, FakeEmbedder, MemoryRegistry, MemoryStore

ROOT = Path(__file__).resolve().parents[2]

DEFAULTS_BEFORE = {  # the limits as they were written in the schemas and services
    "max_request_bytes": 10 * 1024 * 1024, "max_document_chars": 2_000_000,
    "max_documents_per_request": 100, "max_query_chars": 4000, "max_top_k": 50,
    "max_message_chars": 100_000, "max_chat_chars": 400_000, "max_messages": 100,
    "max_history_messages": 50, "max_completion_tokens": 32_768, "max_list_limit": 1000,
    "max_metadata_keys": 64, "max_metadata_value_chars": 2048,
    "max_object_bytes": 50 * 1024 * 1024,
}


def published(spec: dict[str, Any]) -> dict[str, Any]:
    """The limits as the OpenAPI document states them."""
    schemas = spec["components"]["schemas"]

    def prop(model: str, name: str) -> dict[str, Any]:
        value: dict[str, Any] = schemas[model]["properties"][name]
        return value

    def first(options: dict[str, Any], key: str) -> Any:
        return next(o[key] for o in options.get("anyOf", [options]) if key in o)

    metadata = prop("DocumentIn", "metadata")
    listing = next(p for p in spec["paths"]["/v1/documents"]["get"]["parameters"]
                   if p["name"] == "limit")
    return {
        "max_document_chars": prop("DocumentIn", "text")["maxLength"],
        "max_documents_per_request": prop("DocumentsIn", "documents")["maxItems"],
        "max_query_chars": prop("SearchIn", "query")["maxLength"],
        "max_top_k": prop("SearchIn", "top_k")["maximum"],
        "max_message_chars": prop("Message", "content")["maxLength"],
        "max_messages": prop("ChatIn", "messages")["maxItems"],
        "max_history_messages": prop("QueryIn", "history")["maxItems"],
        "max_completion_tokens": first(prop("ChatIn", "max_tokens"), "maximum"),
        "max_list_limit": listing["schema"]["maximum"],
        "max_metadata_keys": metadata["maxProperties"],
        "max_metadata_value_chars": first(metadata["additionalProperties"], "maxLength"),
        "embedding_input_chars": first(prop("EmbeddingsIn", "input"), "maxLength"),
    }


def expected(limits: Limits) -> dict[str, Any]:
    names = [name for name in published_names() if name != "embedding_input_chars"]
    return {**{name: getattr(limits, name) for name in names},
            "embedding_input_chars": limits.max_query_chars * 8}


def published_names() -> list[str]:
    return ["max_document_chars", "max_documents_per_request", "max_query_chars", "max_top_k",
            "max_message_chars", "max_messages", "max_history_messages",
            "max_completion_tokens", "max_list_limit", "max_metadata_keys",
            "max_metadata_value_chars", "embedding_input_chars"]


def test_default_limits_are_the_ones_the_api_had() -> None:
    defaults = Limits(_env_file=None)
    assert {name: getattr(defaults, name) for name in DEFAULTS_BEFORE} == DEFAULTS_BEFORE


def test_openapi_publishes_the_configured_limits() -> None:
    container = Container(Settings(_env_file=None), chat_model=FakeChatModel(),
                          embedder=FakeEmbedder(), store=MemoryStore(), registry=MemoryRegistry())
    with TestClient(create_app(lambda: container)) as client:
        spec = client.get("/openapi.json").json()
    assert published(spec) == expected(current_limits())


_CHILD = """
import json, sys
from fastapi.testclient import TestClient
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.settings import get_settings

sys.path.insert(0, sys.argv[1])
from tests.api.test_configured_limits import published

settings = get_settings()
container = Container(settings)
client = TestClient(create_app(lambda: container, max_request_bytes=settings.max_request_bytes))
statuses = {
    "top_k": client.post("/v1/search", json={"query": "q", "top_k": 8}).status_code,
    "top_k_ok": client.post("/v1/search", json={"query": "q", "top_k": 7}).status_code,
    "query": client.post("/v1/search", json={"query": "q" * 1235}).status_code,
    "documents": client.post("/v1/documents", json={"documents": [{"text": "a"}] * 3}).status_code,
    "metadata": client.post("/v1/documents", json={"documents": [
        {"text": "a", "metadata": {"k": "v" * 51}}]}).status_code,
    "list": client.get("/v1/documents", params={"limit": 21}).status_code,
    "body": client.post("/v1/search", content=b"{}" + b" " * 4096,
                        headers={"content-type": "application/json"}).status_code,
}
print(json.dumps({"published": published(client.get("/openapi.json").json()),
                  "statuses": statuses}))
"""

CONFIGURED = {
    "MAX_QUERY_CHARS": "1234", "MAX_TOP_K": "7", "MAX_MESSAGE_CHARS": "999",
    "MAX_CHAT_CHARS": "3000", "MAX_MESSAGES": "5", "MAX_HISTORY_MESSAGES": "3",
    "MAX_DOCUMENTS_PER_REQUEST": "2", "MAX_DOCUMENT_CHARS": "5000",
    "MAX_COMPLETION_TOKENS": "2048", "MAX_LIST_LIMIT": "20", "MAX_METADATA_KEYS": "4",
    "MAX_METADATA_VALUE_CHARS": "50", "MAX_REQUEST_BYTES": "4096",
}


def test_a_process_configured_with_other_limits_publishes_and_enforces_them(
        tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MAX_", "UPSTAGE_", "OPENSEARCH_", "HYBRID_"))}
    env.update(CONFIGURED, RAG_DATA_DIR=str(tmp_path), VECTOR_STORE="local")
    result = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    limits = Limits.model_validate({key.lower(): int(value) for key, value in CONFIGURED.items()})
    assert answer["published"] == expected(limits)
    assert answer["statuses"] == {"top_k": 422, "top_k_ok": 200, "query": 422, "documents": 422,
                                  "metadata": 422, "list": 422, "body": 413}


@pytest.mark.parametrize(("env", "message"), [
    ({"max_top_k": 0}, "greater than or equal to 1"),
    ({"max_metadata_value_chars": 4096}, "less than or equal to 2048"),
    ({"max_top_k": 200}, "MAX_TOP_K must not exceed HYBRID_MAX_CANDIDATES"),
    ({"chat_max_tokens": 4096, "max_completion_tokens": 2048},
     "CHAT_MAX_TOKENS must not exceed MAX_COMPLETION_TOKENS"),
    ({"max_message_chars": 5000, "max_chat_chars": 4000},
     "MAX_MESSAGE_CHARS must not exceed MAX_CHAT_CHARS"),
])
def test_limits_out_of_bounds_fail_at_start_up(env: dict[str, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(_env_file=None, **env)  # type: ignore[arg-type]


def test_an_invalid_limit_leaves_the_schemas_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schemas are built at import; the container refuses every request (503) meanwhile."""
    monkeypatch.setenv("MAX_TOP_K", "0")
    current_limits.cache_clear()
    try:
        assert current_limits() == Limits.model_construct()
    finally:
        monkeypatch.delenv("MAX_TOP_K")
        current_limits.cache_clear()


class TestLambdaRequestLimit:
    @pytest.fixture(autouse=True)
    def _offline(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
        for name in list(os.environ):
            if name.startswith(("UPSTAGE_", "OPENSEARCH_", "MAX_", "DOCUMENTS_")):
                monkeypatch.delenv(name)
        monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
        monkeypatch.chdir(tmp_path)
        lambda_runtime.reset()
        yield
        lambda_runtime.reset()

    def test_unset_it_is_lambdas_bound(self) -> None:
        assert lambda_runtime.request_limit(lambda_runtime.lambda_settings()) == 4 * 1024 * 1024

    def test_set_lower_it_is_honoured(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MAX_REQUEST_BYTES", "65536")
        assert lambda_runtime.request_limit(lambda_runtime.lambda_settings()) == 65536

    def test_set_higher_it_is_a_configuration_error_answered_by_every_request(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MAX_REQUEST_BYTES", str(8 * 1024 * 1024))
        with pytest.raises(NotConfigured, match="MAX_REQUEST_BYTES: at most 4194304 in AWS Lambda"):
            lambda_runtime.container()
        app = lambda_runtime._create_app(("health", "query"))
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.post("/v1/search", json={"query": "anything"})
        assert response.status_code == 503
        assert "MAX_REQUEST_BYTES: at most 4194304" in response.json()["detail"]

    def test_the_streaming_function_takes_the_same_bound(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        from solar_rag.lambda_edge import web

        monkeypatch.setenv("MAX_REQUEST_BYTES", str(8 * 1024 * 1024))
        monkeypatch.setattr(web._container, "value", None)
        app = web.create_streaming_app(("health", "query"))
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.post("/v1/search", json={"query": "anything"})
        assert response.status_code == 503
        assert "MAX_REQUEST_BYTES: at most 4194304" in response.json()["detail"]


def test_an_invalid_setting_never_shows_a_secret(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """pydantic quotes the input of a check across fields: every variable set, the key too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("UPSTAGE_API_KEY", "up_VerySecretKeyValue0123456789")
    monkeypatch.setenv("MAX_TOP_K", "200")
    get_settings.cache_clear()
    try:
        with pytest.raises(NotConfigured) as raised:
            get_settings()
    finally:
        get_settings.cache_clear()
    assert "MAX_TOP_K must not exceed HYBRID_MAX_CANDIDATES" in raised.value.message
    assert "VerySecret" not in str(raised.value) and "VerySecret" not in repr(raised.value)
