"""Issue 13 at the HTTP edge: ids, bounded error bodies, the published constraints, Allow."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from solar_rag.api.app import create_app
from solar_rag.api.errors import MAX_VALIDATION_ERRORS
from solar_rag.composition import Container
from solar_rag.document_ids import ID_PATTERN, NOT_BLANK_PATTERN
from solar_rag.domain import DocumentRecord, DocumentStatus
from solar_rag.settings import Settings

from tests.fakes.memory import FakeChatModel, FakeEmbedder, MemoryRegistry, MemoryStore


@pytest.fixture
def container() -> Container:
    return Container(Settings(_env_file=None), chat_model=FakeChatModel(),
                     embedder=FakeEmbedder(), store=MemoryStore(), registry=MemoryRegistry())


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    app = create_app(lambda: container, max_request_bytes=10 * 1024 * 1024)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


# -- ids ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy_id", ["line\nbreak", "trailing\n", ".", "..", "a/../b", "tab\tid"])
def test_ids_stored_before_the_grammar_stay_readable_and_deletable(
        client: TestClient, container: Container, legacy_id: str) -> None:
    container.registry.put(DocumentRecord(id=legacy_id, status=DocumentStatus.INDEXED,
                                          chunks=0, content_hash="h"))
    container.registry.put(DocumentRecord(id="trailing", status=DocumentStatus.INDEXED))
    path = "/v1/documents/" + "".join(
        c if c.isalnum() or c == "/" else f"%{ord(c):02X}" for c in legacy_id)
    shown = client.get(path)
    assert shown.status_code == 200, shown.text
    assert shown.json()["id"] == legacy_id
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    assert container.registry.get("trailing") is not None  # "trailing\n" never meant "trailing"


@pytest.mark.parametrize("bad_id", ["a\nb", "..", "docs/./x", "x" * 1025, "   ", "rtl\u202e"])
def test_new_documents_with_ids_outside_the_grammar_are_422(client: TestClient,
                                                            bad_id: str) -> None:
    response = client.post("/v1/documents", json={"documents": [{"id": bad_id, "text": "x"}]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == "id"


# -- error bodies ------------------------------------------------------------------------------

def test_a_huge_invalid_search_body_gets_a_small_422(client: TestClient) -> None:
    filters = {f"key{k}": [{"nested": "v" * 100}] * 100 + ["x" * 5000] * 20 for k in range(32)}
    body = json.dumps({"query": "q", "filters": filters}).encode()
    assert len(body) > 3_500_000
    response = client.post("/v1/search", content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert len(response.content) < 64 * 1024, len(response.content)
    detail = response.json()["detail"]
    assert len(detail) == MAX_VALIDATION_ERRORS + 1
    assert detail[-1]["type"] == "too_many_errors"


def test_validation_errors_still_name_the_field_and_reason(client: TestClient) -> None:
    response = client.post("/v1/search", json={"query": "   "})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "query"] and "blank" in problem["msg"]


# -- the published schema ----------------------------------------------------------------------

def test_openapi_states_what_the_api_enforces(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    text = schemas["DocumentIn"]["properties"]["text"]
    assert (text["minLength"], text["pattern"]) == (1, NOT_BLANK_PATTERN)
    query = schemas["SearchIn"]["properties"]["query"]
    assert (query["minLength"], query["pattern"]) == (1, NOT_BLANK_PATTERN)
    (id_schema, _null) = schemas["DocumentIn"]["properties"]["id"]["anyOf"]
    assert id_schema["pattern"] == ID_PATTERN
    assert id_schema["maxLength"] == 1024
    assert id_schema["allOf"] == [{"pattern": NOT_BLANK_PATTERN}]


@pytest.mark.parametrize("body", [{"documents": [{"text": ""}]},
                                  {"documents": [{"text": "\n\t "}]}])
def test_blank_text_is_refused_by_the_schema(client: TestClient, body: object) -> None:
    assert client.post("/v1/documents", json=body).status_code == 422


# -- Allow ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "allowed"), [
    ("/v1/documents", "GET, OPTIONS, POST"),
    ("/v1/documents/some/id", "DELETE, GET, OPTIONS"),
    ("/v1/health", "GET, OPTIONS"),
    ("/v1/search", "OPTIONS, POST"),
])
def test_options_lists_every_method_of_the_path(client: TestClient, path: str,
                                                allowed: str) -> None:
    response = client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"] == allowed


def test_a_wrong_method_is_405_with_the_full_allow(client: TestClient) -> None:
    response = client.put("/v1/documents", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, OPTIONS, POST"
    assert response.json() == {"detail": "Method Not Allowed"}
    assert client.options("/nowhere").status_code == 404
