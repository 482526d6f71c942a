"""`rag eval --index DIR`: files sent through POST /v1/files, queued documents waited for."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from solar_rag.evaluation.client import ServiceClient
from solar_rag.evaluation.corpus import corpus_files, index_directory


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "ko").mkdir()
    (tmp_path / "ko" / "휴가.md").write_text("# 휴가\n\n연차는 15일이다.\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text("alpha", encoding="utf-8")
    (tmp_path / "a.txt.metadata.json").write_text("{}", encoding="utf-8")
    (tmp_path / ".hidden.md").write_text("no", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    return tmp_path


def test_files_and_ids(folder: Path) -> None:
    assert [p.relative_to(folder).as_posix() for p in corpus_files(folder)] == ["a.txt", "ko/휴가.md"]
    with pytest.raises(ValueError, match="not a directory"):
        corpus_files(folder / "a.txt")
    empty = folder / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no \.docx .* files"):
        corpus_files(empty)


def test_queued_documents_are_waited_for(folder: Path) -> None:
    sent: list[dict[str, str]] = []
    statuses = iter(["queued", "indexing", "indexed"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = json.loads(request.content)
            sent.append(body)
            status = "queued" if body["id"] == "ko/휴가.md" else "indexed"
            return httpx.Response(202 if status == "queued" else 200,
                                  json={"documents": [{"id": body["id"], "status": status, "chunks": 1}]})
        assert request.url.raw_path == b"/v1/documents/ko/%ED%9C%B4%EA%B0%80.md"
        return httpx.Response(200, json={"id": "ko/휴가.md", "status": next(statuses)})

    sleeps: list[float] = []
    client = ServiceClient("http://svc.test", transport=httpx.MockTransport(handler), sleep=sleeps.append)
    assert index_directory(client, folder, sleep=sleeps.append) == {"indexed": 1, "queued": 1}
    assert [(b["id"], b["filename"]) for b in sent] == [("a.txt", "a.txt"), ("ko/휴가.md", "휴가.md")]
    assert base64.b64decode(sent[1]["data_base64"]).decode("utf-8").startswith("# 휴가")
    assert sleeps == [2.0, 2.0]  # queued, indexing, then indexed


def test_failed_unindexable_and_never_indexed_documents_are_errors(folder: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "text must not be blank"})

    client = ServiceClient("http://svc.test", transport=httpx.MockTransport(refuse))
    with pytest.raises(ValueError, match=r"could not index:\n  a.txt: HTTP 422: text must not be blank"):
        index_directory(client, folder)

    def queue_forever(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"documents": [{"id": "x", "status": "queued", "chunks": 0}]})
        return httpx.Response(200, json={"status": "queued"})

    client = ServiceClient("http://svc.test", transport=httpx.MockTransport(queue_forever))
    with pytest.raises(ValueError, match="not indexed after 4 s: x"):
        index_directory(client, folder, sleep=lambda _: None, wait_seconds=4)

    def fail(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"documents": [{"id": "x", "status": "queued", "chunks": 0}]})
        return httpx.Response(200, json={"status": "failed"})

    client = ServiceClient("http://svc.test", transport=httpx.MockTransport(fail))
    with pytest.raises(ValueError, match="x: indexing failed"):
        index_directory(client, folder, sleep=lambda _: None)
