"""Read side of the registry: list and show documents.

A record in ``indexing`` is a write in progress (see docs/reliability.md): its fields are the
acknowledged version's. Once older than ``lease_seconds`` its writer is presumed dead, and it
is shown as ``failed`` with the reason, the acknowledged version's fields unchanged; the next
write of the document (or ``rag doctor --fix``) removes what the interrupted one left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from solar_rag.domain import PENDING_DELETE, DocumentRecord, DocumentStatus
from solar_rag.errors import DocumentNotFound, InvalidInput
from solar_rag.ports import DocumentRegistry

INTENT_LEASE_SECONDS = 960
"""After this long a write in progress is presumed dead: above the 900 s Lambda maximum and
the DynamoDB lock lease, far above a local write."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def interrupted(record: DocumentRecord, now: datetime,
                lease_seconds: float = INTENT_LEASE_SECONDS) -> bool:
    """True for an intent whose writer is presumed dead."""
    if record.status != DocumentStatus.INDEXING:
        return False
    since = record.pending_since or record.updated_at
    return since is None or now - since > timedelta(seconds=lease_seconds)


def resolved(record: DocumentRecord, now: datetime,
             lease_seconds: float = INTENT_LEASE_SECONDS) -> DocumentRecord:
    """What readers see of ``record``: an interrupted write shows as ``failed``."""
    if not interrupted(record, now, lease_seconds):
        return record
    what = ("a removal" if record.pending_version == PENDING_DELETE
            else f"an update to version {(record.pending_version or '?')[:12]}")
    return replace(record, status=DocumentStatus.FAILED, error=(
        f"{what} was interrupted before it finished; the fields shown are the last "
        "acknowledged version's. Write or delete the document again (or run "
        "`rag doctor --fix`) to remove what the interrupted write left in the index."))


class DocumentCatalog:
    def __init__(self, registry: DocumentRegistry, *, max_list_limit: int,
                 lease_seconds: float = INTENT_LEASE_SECONDS,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self._registry = registry
        self._max_list_limit = max_list_limit
        self._lease_seconds = lease_seconds
        self._clock = clock

    def get(self, document_id: str) -> DocumentRecord:
        record = self._registry.get(document_id)
        if record is None or record.status == DocumentStatus.DELETED:
            raise DocumentNotFound(f"document {document_id!r} not found")
        return resolved(record, self._clock(), self._lease_seconds)

    def list(self, *, limit: int = 100, cursor: str | None = None
             ) -> tuple[list[DocumentRecord], str | None]:
        if not 1 <= limit <= self._max_list_limit:
            raise InvalidInput(f"limit must be between 1 and {self._max_list_limit}")
        records, next_cursor = self._registry.list(limit=limit, cursor=cursor)
        now = self._clock()
        return [resolved(r, now, self._lease_seconds) for r in records], next_cursor
