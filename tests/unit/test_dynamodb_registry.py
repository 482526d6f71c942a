"""DynamoDbDocumentRegistry under moto: the registry contract plus DynamoDB-specific cases."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from solar_rag.adapters.dynamodb_registry import DynamoDbDocumentRegistry, item_key, lock_key
from solar_rag.domain import DocumentRecord, DocumentStatus
from solar_rag.errors import ConcurrentUpdate, InvalidInput, UpstreamError
from solar_rag.ports import DocumentRegistry

from tests.contract.registry_contract import DocumentRegistryContract

TABLE = "rag-documents"


def create_table(client: object, name: str = TABLE) -> None:
    client.create_table(  # type: ignore[attr-defined]
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "document_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "document_id", "AttributeType": "S"}],
    )
    client.update_time_to_live(  # type: ignore[attr-defined]
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        yield client


class TestDynamoDbRegistryContract(DocumentRegistryContract):
    @pytest.fixture
    def registry(self, ddb: object) -> DocumentRegistry:
        return DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb,  # type: ignore[arg-type]
                                        wait_seconds=5.0)


def test_lock_item_is_conditional_with_owner_and_lease(ddb: object) -> None:
    now = [1_000_000.0]
    registry = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb, lease_seconds=960,  # type: ignore[arg-type]
                                        clock=lambda: now[0])
    with registry.locked("docs/a.md"):
        item = ddb.get_item(TableName=TABLE,  # type: ignore[attr-defined]
                            Key={"document_id": {"S": "lock#docs/a.md"}})["Item"]
        assert item["item_type"]["S"] == "lock"
        assert int(item["expires_at"]["N"]) == 1_000_960
        assert len(item["owner"]["S"]) == 32
        # a lock item is never a document
        assert registry.get("docs/a.md") is None
        assert registry.list(limit=10) == ([], None)
    assert "Item" not in ddb.get_item(TableName=TABLE,  # type: ignore[attr-defined]
                                      Key={"document_id": {"S": "lock#docs/a.md"}})


def test_held_lock_gives_concurrent_update_after_a_bounded_wait(ddb: object) -> None:
    sleeps: list[float] = []
    holder = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb)  # type: ignore[arg-type]
    waiter = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb, wait_seconds=1.0,  # type: ignore[arg-type]
                                      sleep=sleeps.append)
    with holder.locked("doc"), pytest.raises(ConcurrentUpdate, match="another writer"), \
            waiter.locked("doc"):
        pytest.fail("the lock was taken twice")
    assert sleeps, "the waiter retried before giving up"


def test_expired_lease_can_be_taken_over_and_stale_release_keeps_new_owner(ddb: object) -> None:
    now = [1_000.0]
    first = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb, lease_seconds=10,  # type: ignore[arg-type]
                                     clock=lambda: now[0])
    second = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb, lease_seconds=10,  # type: ignore[arg-type]
                                      clock=lambda: now[0], wait_seconds=0.2)
    with first.locked("doc"):
        now[0] += 11  # the first holder crashed or hung past its lease
        with second.locked("doc"):
            owner = ddb.get_item(TableName=TABLE,  # type: ignore[attr-defined]
                                 Key={"document_id": {"S": lock_key("doc")}})["Item"]["owner"]["S"]
        # second released its own lock; first's release must not fail or delete anything else
    assert "Item" not in ddb.get_item(TableName=TABLE,  # type: ignore[attr-defined]
                                      Key={"document_id": {"S": lock_key("doc")}})
    assert owner


def test_ids_that_look_like_lock_items_do_not_collide(ddb: object) -> None:
    registry = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb)  # type: ignore[arg-type]
    registry.put(DocumentRecord(id="lock#x", status=DocumentStatus.INDEXED, chunks=2))
    registry.put(DocumentRecord(id="doc#lock#x", status=DocumentStatus.INDEXED, chunks=3))
    registry.put(DocumentRecord(id="x", status=DocumentStatus.INDEXED, chunks=1))
    with registry.locked("x"):
        assert [r.id for r in registry.list(limit=10)[0]] == ["doc#lock#x", "lock#x", "x"]
    assert registry.get("lock#x").chunks == 2  # type: ignore[union-attr]
    assert registry.get("doc#lock#x").chunks == 3  # type: ignore[union-attr]
    assert item_key("lock#x") != lock_key("x")


def test_many_chunk_ids_stay_far_below_the_item_limit(ddb: object) -> None:
    registry = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb)  # type: ignore[arg-type]
    ids = [f"0123456789abcdef0123-fedcba9876543210-{i:05d}" for i in range(20_000)]
    registry.put(DocumentRecord(id="big", status=DocumentStatus.INDEXED, chunks=len(ids),
                                chunk_ids=ids))
    loaded = registry.get("big")
    assert loaded is not None and loaded.chunk_ids == ids


def test_list_pages_through_many_documents_without_chunk_ids(ddb: object) -> None:
    registry = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb)  # type: ignore[arg-type]
    ids = sorted(f"doc-{i:04d}" for i in range(250))
    for document_id in ids:
        registry.put(DocumentRecord(id=document_id, status=DocumentStatus.INDEXED, chunk_ids=["c-1"]))
    page, cursor = registry.list(limit=150)
    assert page[0].chunk_ids == []  # a page is a summary; get() has them
    assert registry.get(ids[0]).chunk_ids == ["c-1"]  # type: ignore[union-attr]
    assert [r.id for r in page] == ids[:150] and cursor
    rest, end = registry.list(limit=150, cursor=cursor)
    assert [r.id for r in rest] == ids[150:] and end is None


def test_bad_cursor_is_invalid_input(ddb: object) -> None:
    registry = DynamoDbDocumentRegistry(TABLE, dynamodb_client=ddb)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        registry.list(limit=5, cursor="not-a-cursor!")


def test_missing_table_is_an_upstream_error_without_details(ddb: object) -> None:
    registry = DynamoDbDocumentRegistry("no-such-table", dynamodb_client=ddb)  # type: ignore[arg-type]
    with pytest.raises(UpstreamError, match="ResourceNotFoundException"):
        registry.get("doc")
