"""POST /v1/files: one file as base64 JSON, parsed by its extension and indexed (the
playground's way to add .pdf/.docx/.md/... files, locally and deployed)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.settings import Settings

from tests.fakes.documents import make_pdf


@pytest.fixture
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, embedding_dimensions=64,
                        rag_data_dir=tmp_path_factory.mktemp("files"))
    container = Container(settings)
    with TestClient(create_app(lambda: container), raise_server_exceptions=False) as test_client:
        yield test_client


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def test_a_pdf_is_parsed_indexed_and_searchable(client: TestClient) -> None:
    pdf = make_pdf(["Pump maintenance: replace the seal every 400 hours."], title="Pump manual")
    response = client.post("/v1/files", json={"filename": "manuals/pump.pdf", "data_base64": _b64(pdf),
                                              "metadata": {"team": "ops"}})
    assert response.status_code == 200, response.text
    assert response.json() == {"documents": [{"id": "manuals/pump.pdf", "status": "indexed", "chunks": 1}]}
    document = client.get("/v1/documents/manuals/pump.pdf").json()
    assert document["title"] == "Pump manual" and document["metadata"] == {"team": "ops"}
    assert document["source"] == "manuals/pump.pdf"
    hits = client.post("/v1/search", json={"query": "seal hours", "filters": {"team": "ops"}}).json()
    assert hits["results"][0]["document_id"] == "manuals/pump.pdf"
    again = client.post("/v1/files", json={"filename": "manuals/pump.pdf", "data_base64": _b64(pdf),
                                           "metadata": {"team": "ops"}})
    assert again.json()["documents"][0]["status"] == "unchanged"


def test_markdown_with_an_explicit_id(client: TestClient) -> None:
    response = client.post("/v1/files", json={"filename": "leave.md", "id": "hr/leave",
                                              "data_base64": _b64(b"# Leave\n\n25 days a year.")})
    assert response.json()["documents"][0]["id"] == "hr/leave"
    assert client.get("/v1/documents/hr/leave").json()["content_type"] == "text/markdown"


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"filename": "a.exe", "data_base64": _b64(b"MZ....")}, 400, "unsupported"),
    ({"filename": "a.pdf", "data_base64": _b64(b"not a pdf at all")}, 400, "pdf"),
    ({"filename": "a.md", "data_base64": "****"}, 422, None),
    ({"filename": "a.md", "data_base64": "QQQ=="}, 400, "not valid base64"),
])
def test_bad_files_are_refused(client: TestClient, body: dict[str, str], status: int,
                               detail: str | None) -> None:
    response = client.post("/v1/files", json=body)
    assert response.status_code == status, response.text
    if detail is not None:
        assert detail in response.json()["detail"].lower()
