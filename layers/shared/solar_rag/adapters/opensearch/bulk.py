"""Bulk requests bounded by bytes and count, with per-item inspection and 429 retries
(``retry.OPENSEARCH_BULK_ITEMS``: only the rejected items are sent again).

Our own loop rather than ``helpers.streaming_bulk``: we need every item's outcome (the
server-assigned ids on AOSS Classic), retries of only the rejected items, and all
failure reasons, before deciding whether the stale chunks may be removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch

from solar_rag.errors import InvalidInput, VectorStoreError
from solar_rag.resilience import retry
from solar_rag.resilience.retry import Backoff

log = logging.getLogger(__name__)

NDJSON_HEADERS = {"content-type": "application/x-ndjson"}
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BulkLimits:
    max_bytes: int = 8 * MiB
    """Per request; AWS t3/*.large domains refuse bodies above 10 MiB."""
    max_actions: int = 500
    max_item_retries: int = (retry.OPENSEARCH_BULK_ITEMS.attempts or 1) - 1
    """How often items rejected with 429 are sent again."""
    backoff: Backoff = field(default_factory=lambda: retry.OPENSEARCH_BULK_ITEMS.backoff)

    def __post_init__(self) -> None:
        if self.max_bytes < 1024 or self.max_actions < 1 or self.max_item_retries < 0:
            raise ValueError("bulk limits must be positive (max_bytes >= 1024)")


def encode_line(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


@dataclass(frozen=True, slots=True)
class BulkAction:
    op: str
    """``index`` or ``delete``."""
    key: str
    """What the action is about (chunk id), for error messages."""
    lines: bytes

    @classmethod
    def index(cls, key: str, source: Mapping[str, Any] | str, doc_id: str | None) -> BulkAction:
        """``source``: the document, or its JSON text (one line) when pre-encoded."""
        meta: dict[str, Any] = {} if doc_id is None else {"_id": doc_id}
        line = (
            (source + "\n").encode("utf-8") if isinstance(source, str) else encode_line(source)
        )
        return cls("index", key, encode_line({"index": meta}) + line)

    @classmethod
    def delete(cls, doc_id: str) -> BulkAction:
        return cls("delete", doc_id, encode_line({"delete": {"_id": doc_id}}))


@dataclass(frozen=True, slots=True)
class ItemResult:
    action: BulkAction
    status: int
    doc_id: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        if self.error is None and 200 <= self.status < 300:
            return True
        return self.action.op == "delete" and self.status == 404  # already gone


class BulkWriter:
    def __init__(
        self,
        client: OpenSearch,
        index: str,
        limits: BulkLimits,
        *,
        require_alias: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.index = index
        self.limits = limits
        self.params = {"require_alias": "true"} if require_alias else None
        self.sleep = sleep

    def run(self, actions: Sequence[BulkAction]) -> list[ItemResult]:
        """Send every action; returns one result per action, in order. Raises only on
        request-level failures (the caller inspects item failures)."""
        for action in actions:
            self.check_size(action)
        results: list[ItemResult | None] = [None] * len(actions)
        pending = list(range(len(actions)))

        def attempt() -> None:
            nonlocal pending
            throttled: list[int] = []
            for batch in self._batches(actions, pending):
                for position, item in zip(batch, self._send(actions, batch), strict=True):
                    results[position] = item
                    if item.status in retry.OPENSEARCH_BULK_ITEMS.retry_statuses:
                        throttled.append(position)
            pending = throttled
            if throttled:
                raise _Throttled(len(throttled))

        def warn(state: Any) -> None:
            log.warning("%d bulk items throttled (429), retry in %.2fs", len(pending),
                        state.upcoming_sleep)

        policy = (retry.OPENSEARCH_BULK_ITEMS.with_attempts(self.limits.max_item_retries + 1)
                  .with_backoff(self.limits.backoff))
        # Out of attempts or time: the items keep their 429 for the caller to inspect.
        with contextlib.suppress(_Throttled):
            retry.retrying(policy, retry_on=lambda error: isinstance(error, _Throttled),
                           sleep=self.sleep, before_sleep=warn)(attempt)
        return [r for r in results if r is not None]

    def check_size(self, action: BulkAction) -> None:
        if len(action.lines) > self.limits.max_bytes:
            raise InvalidInput(
                f"chunk {action.key} is {len(action.lines)} bytes as JSON, above the "
                f"bulk request limit of {self.limits.max_bytes} bytes"
            )

    def _batches(self, actions: Sequence[BulkAction], positions: Sequence[int]) -> Iterator[list[int]]:
        batch: list[int] = []
        size = 0
        for position in positions:
            length = len(actions[position].lines)
            if batch and (size + length > self.limits.max_bytes
                          or len(batch) >= self.limits.max_actions):
                yield batch
                batch, size = [], 0
            batch.append(position)
            size += length
        if batch:
            yield batch

    def _send(self, actions: Sequence[BulkAction], batch: Sequence[int]) -> list[ItemResult]:
        body = b"".join(actions[p].lines for p in batch)
        response = self.client.bulk(
            body=body, index=self.index, headers=NDJSON_HEADERS, params=self.params
        )
        items = response.get("items") or []
        if len(items) != len(batch):
            raise VectorStoreError(
                f"OpenSearch bulk answered {len(items)} items for {len(batch)} actions"
            )
        return [_item_result(actions[p], item) for p, item in zip(batch, items, strict=True)]


class _Throttled(Exception):
    """Some items of the last attempt were answered 429 (never leaves this module)."""


def _item_result(action: BulkAction, item: Mapping[str, Any]) -> ItemResult:
    (outcome,) = item.values()
    status = int(outcome.get("status", 0))
    error = outcome.get("error")
    message: str | None = None
    if error is not None:
        if isinstance(error, Mapping):
            message = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
        else:
            message = str(error)
    return ItemResult(action=action, status=status, doc_id=outcome.get("_id"), error=message)


def failure_summary(failures: Sequence[ItemResult], *, limit: int = 3) -> str:
    reasons = [
        f"{f.action.key}: {f.status} {f.error or 'failed'}" for f in failures[:limit]
    ]
    more = f" (and {len(failures) - limit} more)" if len(failures) > limit else ""
    return "; ".join(reasons) + more
