"""One cursor format for every registry (solar_rag.paging): opaque, strictly validated, a clear
400 over HTTP for anything else; the DynamoDB registry's earlier cursors still work."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from solar_rag.adapters.dynamodb_registry import DynamoDbDocumentRegistry
from solar_rag.adapters.local_store import LocalDocumentRegistry
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.domain import DocumentRecord, DocumentStatus
from solar_rag.errors import InvalidInput
from solar_rag.paging import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from solar_rag.ports import DocumentRegistry
from solar_rag.settings import Settings

from tests.unit.test_dynamodb_registry import TABLE, ddb  # noqa: F401 (the fixture)

IDS = ["a.md", "문서/1", "문서/2", "z \"quoted\" id", "\U0001f600/emoji"]


@pytest.fixture(params=["local", "dynamodb"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentRegistry]:
    if request.param == "local":
        local = LocalDocumentRegistry(tmp_path)
        yield local
        local.close()
    else:
        client = request.getfixturevalue("ddb")
        yield DynamoDbDocumentRegistry(TABLE, dynamodb_client=client)


def _fill(registry: DocumentRegistry) -> None:
    for document_id in IDS:
        registry.put(DocumentRecord(id=document_id, status=DocumentStatus.INDEXED))


def test_both_registries_issue_the_same_cursor(registry: DocumentRegistry) -> None:
    _fill(registry)
    page, cursor = registry.list(limit=2)
    assert cursor == encode_cursor(page[-1].id)
    assert cursor is not None and all(c.isalnum() or c in "-_" for c in cursor)  # URL-safe
    seen = [r.id for r in page]
    while cursor is not None:
        page, cursor = registry.list(limit=2, cursor=cursor)
        seen.extend(r.id for r in page)
    assert seen == sorted(IDS)


def _old_dynamodb_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode("ascii")


def _old_local_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode("utf-8")).decode("ascii").rstrip("=")


def test_earlier_dynamodb_cursors_are_still_accepted(registry: DocumentRegistry) -> None:
    _fill(registry)
    assert _old_dynamodb_cursor("a.md").endswith("=")  # they were padded
    for last in ("a.md", "문서/1"):  # and their JSON escaped non-ASCII
        page, _ = registry.list(limit=10, cursor=_old_dynamodb_cursor(last))
        assert [r.id for r in page] == sorted(IDS)[sorted(IDS).index(last) + 1:]


@pytest.mark.parametrize("cursor", [
    "%%%", "not base64!", "gA", "e30", _old_local_cursor("a.md"),  # e30 = {}
    encode_cursor("x")[:-2],
    base64.urlsafe_b64encode(b'{"after": ""}').decode(),
    base64.urlsafe_b64encode(b'{"after": 7}').decode(),
    base64.urlsafe_b64encode(b'["after", "x"]').decode(),
    base64.urlsafe_b64encode(b'{"after": "x", "more": 1}').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "한국어",
])
def test_anything_else_is_invalid_input(registry: DocumentRegistry, cursor: str) -> None:
    with pytest.raises(InvalidInput, match="cursor is not valid: use next_cursor as returned"):
        registry.list(limit=5, cursor=cursor)


def test_round_trip_and_the_longest_cursor_fits_the_api_bound() -> None:
    for document_id in IDS:
        assert decode_cursor(encode_cursor(document_id)) == document_id
    for longest_id in ("\U0010fffd" * 1024, "\x01" * 1024):  # the latter stored before the grammar
        longest = encode_cursor(longest_id)
        assert len(longest) <= MAX_CURSOR_CHARS
        assert decode_cursor(longest) == longest_id


def test_http_answers_a_bad_cursor_with_400_and_pages_with_good_ones(tmp_path: Path) -> None:
    container = Container(Settings(_env_file=None, rag_data_dir=tmp_path))
    with TestClient(create_app(lambda: container)) as client:
        for document_id in ("one", "two", "three"):
            container.registry.put(DocumentRecord(id=document_id, status=DocumentStatus.INDEXED))
        bad = client.get("/v1/documents", params={"cursor": _old_local_cursor("one")})
        assert bad.status_code == 400
        assert bad.json() == {"detail": "cursor is not valid: use next_cursor as returned, or "
                                        "list again without a cursor"}
        first = client.get("/v1/documents", params={"limit": 2}).json()
        rest = client.get("/v1/documents", params={"limit": 2, "cursor": first["next_cursor"]})
        assert [d["id"] for d in first["documents"] + rest.json()["documents"]] == [
            "one", "three", "two"]
        too_long = client.get("/v1/documents", params={"cursor": "A" * (MAX_CURSOR_CHARS + 1)})
        assert too_long.status_code == 422
