"""`rag doctor`: find where the index and the registry disagree, and repair it.

What it finds, per document (the store's inventory against the registry):

- ``orphaned_chunks``: chunks of a document the registry does not list (absent or deleted);
- ``stale_versions``: chunks of a version other than the one the registry acknowledges;
- ``interrupted_write``: a registry row left in ``indexing`` by a writer that died (older than
  the intent lease; younger ones are writes in progress and are left alone);
- ``missing_chunks`` / ``chunk_count_mismatch``: the acknowledged version has no chunks, or
  not as many as the registry recorded.

Repairs run under the document's lock, on a fresh look at that document: chunks that no
record acknowledges are removed; a document whose acknowledged version is gone or incomplete
has its chunks removed and is marked ``failed`` ("send it again"): the text needed to rebuild
it is not kept anywhere. Running it again after a repair finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from solar_rag.domain import DocumentRecord, DocumentStatus
from solar_rag.ports import DocumentRegistry, StoreInventory
from solar_rag.services.documents import INTENT_LEASE_SECONDS, interrupted

FindingKind = Literal["orphaned_chunks", "stale_versions", "interrupted_write",
                      "missing_chunks", "chunk_count_mismatch"]
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    document_id: str
    detail: str


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _short(version: str) -> str:
    return version[:12]


class Doctor:
    def __init__(self, *, store: StoreInventory, registry: DocumentRegistry,
                 lease_seconds: float = INTENT_LEASE_SECONDS,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self._store = store
        self._registry = registry
        self._lease_seconds = lease_seconds
        self._clock = clock

    def examine(self) -> list[Finding]:
        inventory = self._store.document_versions()
        now = self._clock()
        findings: list[Finding] = []
        listed: set[str] = set()
        cursor: str | None = None
        while True:
            records, cursor = self._registry.list(limit=PAGE, cursor=cursor)
            for record in records:
                listed.add(record.id)
                findings.extend(self._diagnose(record.id, record, inventory.get(record.id, {}),
                                               now))
            if not cursor:
                break
        for document_id in sorted(set(inventory) - listed):
            findings.extend(self._diagnose(document_id, self._registry.get(document_id),
                                           inventory[document_id], now))
        return findings

    def fix(self, findings: list[Finding]) -> list[Finding]:
        """Repair the documents of ``findings``; returns what was repaired."""
        repaired: list[Finding] = []
        for document_id in dict.fromkeys(f.document_id for f in findings):
            with self._registry.locked(document_id):
                record = self._registry.get(document_id)
                versions = self._store.document_versions(document_id).get(document_id, {})
                for finding in self._diagnose(document_id, record, versions, self._clock()):
                    self._repair(finding, record)
                    repaired.append(finding)
                    record = self._registry.get(document_id)
        return repaired

    def _diagnose(self, document_id: str, record: DocumentRecord | None,
                  versions: dict[str, int], now: datetime) -> list[Finding]:
        total = sum(versions.values())
        if record is None or record.status == DocumentStatus.DELETED:
            if not total:
                return []
            return [Finding("orphaned_chunks", document_id,
                            f"{total} chunks (versions {', '.join(map(_short, versions))}) of a "
                            "document the registry does not list")]
        if record.status == DocumentStatus.INDEXING:
            if not interrupted(record, now, self._lease_seconds):
                return []  # a write in progress
            return [Finding("interrupted_write", document_id,
                            f"left in 'indexing' since {record.pending_since or record.updated_at}"
                            f" (target {_short(record.pending_version or '?')})")]
        acknowledged = record.content_hash
        stale = sorted(v for v in versions if v != acknowledged)
        findings: list[Finding] = []
        if stale:
            findings.append(Finding(
                "stale_versions", document_id,
                f"{sum(versions[v] for v in stale)} chunks of versions "
                f"{', '.join(map(_short, stale))}, not the acknowledged "
                f"{_short(acknowledged) if acknowledged else 'none'}"))
        have = versions.get(acknowledged, 0) if acknowledged else 0
        expected = record.chunks if acknowledged else 0
        if expected and not have:
            findings.append(Finding("missing_chunks", document_id,
                                    f"the registry records {expected} chunks, the index has none"))
        elif have != expected:
            findings.append(Finding("chunk_count_mismatch", document_id,
                                    f"the registry records {expected} chunks, the index has {have}"))
        return findings

    def _repair(self, finding: Finding, record: DocumentRecord | None) -> None:
        document_id = finding.document_id
        if record is None or finding.kind == "orphaned_chunks":
            self._store.remove_versions(document_id, keep=None)
            return
        if finding.kind == "stale_versions":
            self._store.remove_versions(document_id, keep=record.content_hash)
            return
        if finding.kind == "interrupted_write":
            self._store.remove_versions(document_id, keep=record.content_hash)
            versions = self._store.document_versions(document_id).get(document_id, {})
            have = versions.get(record.content_hash, 0) if record.content_hash else 0
            if record.content_hash and have == record.chunks:
                status = DocumentStatus.FAILED if record.error else DocumentStatus.INDEXED
                self._registry.put(replace(record, status=status, pending_version=None,
                                           pending_since=None, updated_at=self._clock()))
                return
            reason = ("an interrupted write left it without a complete version "
                      f"({have} of {record.chunks} chunks); send it again")
        else:
            reason = f"{finding.detail}; its chunks were removed: send it again"
        self._store.remove_versions(document_id, keep=None)
        self._registry.put(replace(record, status=DocumentStatus.FAILED, error=reason,
                                   content_hash=None, chunks=0, chunk_ids=[],
                                   pending_version=None, pending_since=None,
                                   updated_at=self._clock()))
