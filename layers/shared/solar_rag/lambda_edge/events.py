"""S3 notifications delivered through SQS, read with Powertools' event source classes.

The indexer's SQS messages each carry one S3 notification (``Records``) or, once, the
``s3:TestEvent`` S3 sends when the notification is configured. Keys arrive URL-encoded with
``+`` for spaces.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes.s3_event import S3Event, S3EventRecord

from solar_rag.errors import InvalidInput
from solar_rag.services.s3_ingestion import ChangeKind, ObjectChange


def _kind(event_name: str) -> ChangeKind | None:
    if event_name.startswith("ObjectCreated:"):
        return "created"
    if event_name.startswith(("ObjectRemoved:", "LifecycleExpiration:Delete")):
        return "removed"
    return None


def parse_notification(body: str | Mapping[str, Any], *, bucket: str | None = None
                       ) -> list[ObjectChange]:
    """The object changes in one S3 notification (an SQS message body); ``[]`` for a test event.

    Raises ``InvalidInput`` for a body that is not an S3 notification, or one about another
    bucket than ``bucket`` (when given).
    """
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise InvalidInput("message body is not JSON") from None
    if not isinstance(body, Mapping):
        raise InvalidInput("message body is not a JSON object")
    if body.get("Event") == "s3:TestEvent":
        return []
    if not isinstance(body.get("Records"), list):
        raise InvalidInput("message body has no S3 Records")
    changes = []
    for record in S3Event(dict(body)).records:
        change = _change(record)
        if change is not None and bucket and change.bucket and change.bucket != bucket:
            raise InvalidInput(f"event for bucket {change.bucket!r}, expected {bucket!r}")
        if change is not None:
            changes.append(change)
    return changes


def _change(record: S3EventRecord) -> ObjectChange | None:
    if not isinstance(record.raw_event, Mapping) or record.get("eventSource") != "aws:s3":
        raise InvalidInput("record is not an S3 event record")
    kind = _kind(str(record.get("eventName", "")))
    if kind is None:
        return None
    s3 = record.get("s3")
    raw_object = s3.get("object") if isinstance(s3, Mapping) else None
    if not isinstance(raw_object, Mapping) or not isinstance(raw_object.get("key"), str):
        raise InvalidInput("S3 record has no object key")
    obj = record.s3.get_object
    key = unquote_plus(obj.key)
    if not key:
        raise InvalidInput("S3 record has an empty object key")
    bucket = s3.get("bucket") if isinstance(s3, Mapping) else None
    size = raw_object.get("size")
    return ObjectChange(
        kind=kind, key=key,
        bucket=record.s3.bucket.name if isinstance(bucket, Mapping) and "name" in bucket else None,
        sequencer=_text(raw_object.get("sequencer")), etag=_text(obj.etag),
        version_id=_text(obj.version_id),
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
    )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "", "null") else None
