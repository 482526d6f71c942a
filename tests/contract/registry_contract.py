"""Behavioural contract every DocumentRegistry must pass (local SQLite, DynamoDB, ...).

Subclass ``DocumentRegistryContract`` in a ``Test*`` class and override the ``registry``
fixture so it returns a fresh, empty registry.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from solar_rag.domain import DocumentRecord, DocumentStatus
from solar_rag.ports import DocumentRegistry

LOCK_WAIT_SECONDS = 10.0


def full_record(document_id: str = "docs/guide.md") -> DocumentRecord:
    """A record with every field set to a non-default value."""
    return DocumentRecord(
        id=document_id,
        status=DocumentStatus.INDEXED,
        title="가이드 — Guide",
        source="s3://bucket/docs/guide.md",
        content_type="text/markdown",
        chunks=3,
        content_hash="ab" * 32,
        metadata={"lang": "ko", "year": 2024, "public": True, "rating": 4.5, "zero": 0,
                  "off": False, "negative": -7, "언어": "한국어"},
        indexed_at=datetime(2026, 11, 27, 10, 30, 15, 123456, tzinfo=UTC),
        updated_at=datetime(2026, 11, 27, 11, 0, 0, tzinfo=UTC),
        error="an earlier attempt timed out",
        sequencer="0055AED6DCD90281E5",
        etag='"d41d8cd98f00b204e9800998ecf8427e"',
        version_id="3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
        chunk_ids=["c-00000", "c-00001", "c-00002"],
    )


def record(document_id: str, status: DocumentStatus = DocumentStatus.INDEXED) -> DocumentRecord:
    return DocumentRecord(id=document_id, status=status, chunks=1, content_hash=document_id)


class DocumentRegistryContract:
    @pytest.fixture
    def registry(self) -> DocumentRegistry:
        raise NotImplementedError("subclasses return a fresh, empty registry")

    def test_unknown_document_is_none(self, registry: DocumentRegistry) -> None:
        assert registry.get("missing") is None

    def test_put_get_round_trips_every_field(self, registry: DocumentRegistry) -> None:
        original = full_record()
        registry.put(original)
        loaded = registry.get(original.id)
        assert loaded == original
        assert loaded is not None
        for key, value in original.metadata.items():
            assert type(loaded.metadata[key]) is type(value), key
        assert loaded.indexed_at is not None
        assert loaded.indexed_at.utcoffset() == timedelta(0)

    def test_failed_record_keeps_its_error(self, registry: DocumentRegistry) -> None:
        failed = DocumentRecord(id="bad.exe", status=DocumentStatus.FAILED,
                                error="unsupported content type", metadata={})
        registry.put(failed)
        assert registry.get("bad.exe") == failed

    def test_datetimes_in_other_zones_come_back_as_the_same_instant(
        self, registry: DocumentRegistry
    ) -> None:
        seoul = timezone(timedelta(hours=9))
        at = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=seoul)
        registry.put(DocumentRecord(id="tz", status=DocumentStatus.INDEXED, indexed_at=at))
        loaded = registry.get("tz")
        assert loaded is not None and loaded.indexed_at == at

    def test_put_replaces_the_record(self, registry: DocumentRegistry) -> None:
        registry.put(full_record("doc"))
        replacement = DocumentRecord(id="doc", status=DocumentStatus.DELETED, chunks=0)
        registry.put(replacement)
        assert registry.get("doc") == replacement

    def test_list_empty(self, registry: DocumentRegistry) -> None:
        assert registry.list(limit=10) == ([], None)

    def test_list_pages_through_live_documents_in_id_order(
        self, registry: DocumentRegistry
    ) -> None:
        live = ["a/1", "a/2", "b", "c.txt", "d", "e-1", "f"]
        for document_id in reversed(live):
            registry.put(record(document_id))
        registry.put(record("a/15", DocumentStatus.DELETED))
        registry.put(record("e-0", DocumentStatus.DELETED))
        registry.put(record("g-failed", DocumentStatus.FAILED))
        registry.put(record("g-indexing", DocumentStatus.INDEXING))
        expected = sorted([*live, "g-failed", "g-indexing"])

        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page, cursor = registry.list(limit=3, cursor=cursor)
            pages += 1
            assert len(page) <= 3
            seen.extend(r.id for r in page)
            if cursor is None:
                break
            assert pages < 10
        assert seen == expected
        assert pages == 3

    def test_list_exact_page_boundary_has_no_dangling_cursor(
        self, registry: DocumentRegistry
    ) -> None:
        for document_id in ("x", "y"):
            registry.put(record(document_id))
        page, cursor = registry.list(limit=2)
        assert [r.id for r in page] == ["x", "y"]
        if cursor is not None:  # a backend may not know it was the end; the next page is empty
            assert registry.list(limit=2, cursor=cursor) == ([], None)

    def test_deleted_documents_are_not_listed_but_can_be_read(
        self, registry: DocumentRegistry
    ) -> None:
        registry.put(record("gone", DocumentStatus.DELETED))
        assert registry.list(limit=10) == ([], None)
        gone = registry.get("gone")
        assert gone is not None and gone.status is DocumentStatus.DELETED

    def test_locked_excludes_a_second_holder_until_released(
        self, registry: DocumentRegistry
    ) -> None:
        acquired = threading.Event()
        released_at: list[float] = []
        acquired_at: list[float] = []
        failures: list[BaseException] = []

        def second() -> None:
            try:
                with registry.locked("doc"):
                    acquired_at.append(time.monotonic())
                    acquired.set()
            except BaseException as exc:  # surfaced below
                failures.append(exc)
                acquired.set()

        with registry.locked("doc"):
            thread = threading.Thread(target=second)
            thread.start()
            assert not acquired.wait(0.3), "second holder got in while the lock was held"
            released_at.append(time.monotonic())
        assert acquired.wait(LOCK_WAIT_SECONDS)
        thread.join(LOCK_WAIT_SECONDS)
        assert failures == []
        assert acquired_at[0] >= released_at[0]

    def test_locks_of_different_documents_are_independent(
        self, registry: DocumentRegistry
    ) -> None:
        done = threading.Event()

        def other() -> None:
            with registry.locked("doc-b"):
                done.set()

        with registry.locked("doc-a"):
            thread = threading.Thread(target=other)
            thread.start()
            assert done.wait(LOCK_WAIT_SECONDS)
            thread.join(LOCK_WAIT_SECONDS)

    def test_lock_is_released_when_the_body_raises(self, registry: DocumentRegistry) -> None:
        with pytest.raises(RuntimeError), registry.locked("doc"):
            raise RuntimeError("boom")
        done = threading.Event()

        def again() -> None:
            with registry.locked("doc"):
                done.set()

        thread = threading.Thread(target=again)
        thread.start()
        assert done.wait(LOCK_WAIT_SECONDS)
        thread.join(LOCK_WAIT_SECONDS)

    def test_a_write_intent_round_trips_and_is_listed(self, registry: DocumentRegistry) -> None:
        """``indexing`` rows (issue 13): the pending version and its start survive, and the
        row is listed (its chunks must stay reachable through the API)."""
        since = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
        intent = replace(full_record(), status=DocumentStatus.INDEXING,
                         pending_version="cd" * 32, pending_since=since)
        registry.put(intent)
        stored = registry.get(intent.id)
        assert stored is not None
        assert (stored.status, stored.pending_version) == (DocumentStatus.INDEXING, "cd" * 32)
        assert stored.pending_since == since
        assert stored.content_hash == "ab" * 32 and stored.chunk_ids == intent.chunk_ids
        (listed,), _ = registry.list(limit=10)
        assert (listed.status, listed.pending_version) == (DocumentStatus.INDEXING, "cd" * 32)
        registry.put(replace(stored, status=DocumentStatus.INDEXED, pending_version=None,
                             pending_since=None))
        cleared = registry.get(intent.id)
        assert cleared is not None
        assert (cleared.pending_version, cleared.pending_since) == (None, None)
