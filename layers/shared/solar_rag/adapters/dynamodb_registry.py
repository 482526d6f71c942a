"""The document registry in DynamoDB: status, ordering markers and per-document locks.

Table: partition key ``document_id`` (S), TTL attribute ``expires_at`` (lock items only).

- A document is one item. Its key is the document id, except that ids starting with
  ``lock#`` or ``doc#`` are stored as ``doc#<id>``: a document can never collide with a lock.
  The real id is kept in ``id``.
- A lock is the item ``lock#<id>`` with an owner token and a lease (``expires_at``, epoch
  seconds, longer than the Lambda timeout), taken with a conditional put (absent or expired)
  and released with a conditional delete (still ours). An abandoned lock expires by itself.
- ``list`` returns live documents in id order (the port's contract), without their chunk ids:
  one paginated Scan filtered on ``item_type = document`` and ``status <> deleted``, sorted in
  memory; the cursor is opaque (``solar_rag.paging``, as for every registry). Each page reads the whole
  table: fine for thousands to tens of thousands of documents, with no index to keep and only
  GetItem/PutItem/DeleteItem/Scan permissions. Beyond that, add a sparse GSI (partition
  ``"live"``, sort key ``id``) and Query it.
- Chunk ids (needed to delete on targets that assign their own ids) are stored zlib-compressed
  to stay far below DynamoDB's 400 KB item limit.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from solar_rag.adapters.aws_clients import client, error_code
from solar_rag.domain import DocumentRecord, DocumentStatus, Metadata
from solar_rag.errors import ConcurrentUpdate, InvalidInput, RagError, UpstreamError
from solar_rag.paging import decode_cursor, encode_cursor
from solar_rag.resilience import retry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

logger = logging.getLogger("solar_rag.registry")

DEFAULT_LEASE_SECONDS = 960  # above the 900 s Lambda maximum: a live holder never loses it
MAX_ERROR_CHARS = 2000
LISTED_ATTRIBUTES = ("item_type", "id", "status", "title", "source", "content_type", "chunks",
                     "content_hash", "metadata", "indexed_at", "updated_at", "error", "sequencer",
                     "etag", "version_id", "pending_version", "pending_since")
LOCK_PREFIX = "lock#"
ESCAPE_PREFIX = "doc#"
_CONDITION_FAILED = "ConditionalCheckFailedException"

Item = dict[str, "AttributeValueTypeDef"]
Records = list[DocumentRecord]


def item_key(document_id: str) -> str:
    if document_id.startswith((LOCK_PREFIX, ESCAPE_PREFIX)):
        return ESCAPE_PREFIX + document_id
    return document_id


def lock_key(document_id: str) -> str:
    return LOCK_PREFIX + document_id


class DynamoDbDocumentRegistry:
    def __init__(
        self,
        table_name: str,
        *,
        dynamodb_client: DynamoDBClient | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not table_name:
            raise ValueError("table_name must not be empty")
        self._table = table_name
        self._client = dynamodb_client
        self.lease_seconds = lease_seconds
        self._lock_policy = retry.DOCUMENT_LOCK_DYNAMODB if wait_seconds is None \
            else retry.DOCUMENT_LOCK_DYNAMODB.with_patience(wait_seconds)
        self._clock = clock
        self._sleep = sleep

    def _ddb(self) -> DynamoDBClient:
        if self._client is None:
            self._client = client("dynamodb")
        return self._client

    # --- reads and writes ------------------------------------------------------------------

    def get(self, document_id: str) -> DocumentRecord | None:
        response = self._call("get", lambda: self._ddb().get_item(
            TableName=self._table, Key={"document_id": {"S": item_key(document_id)}},
            ConsistentRead=True,
        ))
        item = response.get("Item")
        return _from_item(item) if item else None

    def put(self, record: DocumentRecord) -> None:
        item = _to_item(record)
        self._call("put", lambda: self._ddb().put_item(TableName=self._table, Item=item))

    def list(self, *, limit: int, cursor: str | None = None
             ) -> tuple[list[DocumentRecord], str | None]:
        if limit < 1:
            raise InvalidInput("limit must be at least 1")
        after = decode_cursor(cursor) if cursor else None
        live = sorted((r for r in self._live_records() if after is None or r.id > after),
                      key=lambda r: r.id)
        page = live[:limit]
        return page, (encode_cursor(page[-1].id) if len(live) > limit else None)

    def _live_records(self) -> Records:
        """Every live document without its chunk ids: one paginated Scan (see the module docstring)."""
        names = {f"#{name}": name for name in LISTED_ATTRIBUTES}
        records: Records = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self._table,
                "ProjectionExpression": ", ".join(names),
                "FilterExpression": "#item_type = :document AND #status <> :deleted",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {":document": {"S": "document"},
                                              ":deleted": {"S": DocumentStatus.DELETED.value}},
            }
            if start:
                request["ExclusiveStartKey"] = start
            response = self._call("list", lambda r=request: self._ddb().scan(**r))  # type: ignore[misc]
            records.extend(_from_item(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return records

    # --- locking ---------------------------------------------------------------------------

    @contextmanager
    def locked(self, document_id: str) -> Iterator[None]:
        token = uuid.uuid4().hex
        self._acquire(document_id, token)
        try:
            yield
        finally:
            self._release(document_id, token)

    def _acquire(self, document_id: str, token: str) -> None:
        """A conditional put (absent or expired), tried again under
        ``retry.DOCUMENT_LOCK_DYNAMODB`` while another writer holds the lock."""

        def attempt() -> None:
            now = self._clock()
            try:
                self._ddb().put_item(
                    TableName=self._table,
                    Item={"document_id": {"S": lock_key(document_id)}, "item_type": {"S": "lock"},
                          "id": {"S": document_id}, "owner": {"S": token},
                          "expires_at": {"N": str(int(now + self.lease_seconds))}},
                    ConditionExpression="attribute_not_exists(document_id) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(int(now))}},
                )
            except Exception as error:  # botocore's ClientError, typed per client: by its code
                if error_code(error) != _CONDITION_FAILED:
                    raise _storage_error("lock", error) from None
                raise _Held from None

        try:
            retry.retrying(self._lock_policy, retry_on=lambda error: isinstance(error, _Held),
                           sleep=self._sleep, before_sleep=retry.quiet)(attempt)
        except _Held:
            raise ConcurrentUpdate(
                f"document {document_id!r} is being updated by another writer; try again later"
            ) from None

    def _release(self, document_id: str, token: str) -> None:
        try:
            self._ddb().delete_item(
                TableName=self._table, Key={"document_id": {"S": lock_key(document_id)}},
                ConditionExpression="#owner = :token",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except Exception as error:
            if error_code(error) == _CONDITION_FAILED:
                logger.warning("lock lease expired before release", extra={"document_id": document_id})
                return
            # The lease expires by itself; failing the finished work would only redo it.
            logger.warning("could not release lock: %s", error_code(error) or type(error).__name__,
                           extra={"document_id": document_id})

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as error:
            raise _storage_error(what, error) from None


class _Held(Exception):
    """Another writer holds the lock item (never leaves this module)."""


def _storage_error(what: str, error: Exception) -> RagError:
    if isinstance(error, RagError):  # the deadline, refused before sending
        return error
    detail = error_code(error) or type(error).__name__
    return UpstreamError(f"document registry {what} failed ({detail})")


# --- item mapping ------------------------------------------------------------------------------

def _to_item(record: DocumentRecord) -> Item:
    item: Item = {
        "document_id": {"S": item_key(record.id)},
        "item_type": {"S": "document"},
        "id": {"S": record.id},
        "status": {"S": record.status.value},
        "content_type": {"S": record.content_type},
        "chunks": {"N": str(record.chunks)},
        "metadata": {"S": json.dumps(record.metadata, ensure_ascii=False, sort_keys=True)},
    }
    optional = {
        "title": record.title, "source": record.source, "content_hash": record.content_hash,
        "sequencer": record.sequencer, "etag": record.etag, "version_id": record.version_id,
        "error": record.error[:MAX_ERROR_CHARS] if record.error else None,
        "indexed_at": record.indexed_at.isoformat() if record.indexed_at else None,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
        "pending_version": record.pending_version,
        "pending_since": record.pending_since.isoformat() if record.pending_since else None,
    }
    for name, value in optional.items():
        if value:
            item[name] = {"S": value}
    if record.chunk_ids:
        packed = zlib.compress(json.dumps(record.chunk_ids).encode("utf-8"), level=9)
        item["chunk_ids"] = {"B": packed}
    return item


def _from_item(item: dict[str, Any]) -> DocumentRecord:
    def text(name: str) -> str | None:
        value = item.get(name)
        return str(value["S"]) if value and "S" in value else None

    def when(name: str) -> datetime | None:
        value = text(name)
        return datetime.fromisoformat(value) if value else None

    metadata: Metadata = json.loads(text("metadata") or "{}")
    chunk_ids: list[str] = []
    if "chunk_ids" in item:
        chunk_ids = json.loads(zlib.decompress(bytes(item["chunk_ids"]["B"])))
    return DocumentRecord(
        id=text("id") or "", status=DocumentStatus(text("status") or DocumentStatus.FAILED.value),
        title=text("title"), source=text("source"),
        content_type=text("content_type") or "text/plain",
        chunks=int(item.get("chunks", {}).get("N", "0")), content_hash=text("content_hash"),
        metadata=metadata, indexed_at=when("indexed_at"), updated_at=when("updated_at"),
        error=text("error"), sequencer=text("sequencer"), etag=text("etag"),
        version_id=text("version_id"), chunk_ids=chunk_ids,
        pending_version=text("pending_version"), pending_since=when("pending_since"),
    )
