"""A writer that dies mid-write leaves the old version or the new one, never a mixture.

Local store: chunks and registry row commit in one SQLite transaction. Other stores (the AWS
path, modelled by the memory fakes): an intent (`indexing`) is recorded first; readers show the
acknowledged version and the next write removes what the interrupted one left behind.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from solar_rag.adapters.local_store import LocalDocumentRegistry, LocalVectorStore
from solar_rag.adapters.local_store import store as local_store_module
from solar_rag.domain import PENDING_DELETE, DocumentRecord, DocumentStatus, Rejection, SourceDocument
from solar_rag.services.documents import INTENT_LEASE_SECONDS, DocumentCatalog
from solar_rag.services.indexing import IndexingService

from tests.fakes.memory import FakeEmbedder, MemoryRegistry, MemoryStore
from tests.unit.test_indexing_service import ParagraphChunker, parse

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


class Crash(BaseException):
    """A process dying: nothing catches it."""


def _service(store: object, registry: object, embedder: FakeEmbedder) -> IndexingService:
    return IndexingService(parse=parse, chunker=ParagraphChunker(), chunker_signature="p",
                           embedder=embedder, store=store, registry=registry,  # type: ignore[arg-type]
                           clock=lambda: NOW)


def _doc(version: str) -> SourceDocument:
    return SourceDocument(id="a", text=f"{version} one\n\n{version} two")


# -- local store: one transaction ------------------------------------------------------------

@pytest.fixture
def local(tmp_path: Path) -> tuple[LocalVectorStore, LocalDocumentRegistry, IndexingService]:
    embedder = FakeEmbedder()
    store = LocalVectorStore(tmp_path, space=embedder.space, dimensions=embedder.dimensions)
    registry = LocalDocumentRegistry(tmp_path)
    return store, registry, _service(store, registry, embedder)


def _rows(path: Path) -> tuple[set[tuple[str, str]], dict[str, tuple[str, str | None]]]:
    conn = sqlite3.connect(path)
    try:
        chunks = set(conn.execute("SELECT document_id, version FROM chunks"))
        docs = {row[0]: (row[1], row[2])
                for row in conn.execute("SELECT id, status, content_hash FROM documents")}
        return chunks, docs
    finally:
        conn.close()


def crash_when_the_record_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies inside the local store's transaction, after the chunks."""

    def die(*_: object) -> None:
        raise Crash

    monkeypatch.setattr(local_store_module, "write_record", die)


def test_local_store_shares_its_transactions_with_its_registry_only(
        local: tuple[LocalVectorStore, LocalDocumentRegistry, IndexingService],
        tmp_path: Path) -> None:
    store, registry, _ = local
    assert store.shares_transactions_with(registry)
    other = LocalDocumentRegistry(tmp_path / "elsewhere")
    assert not store.shares_transactions_with(other)
    assert not store.shares_transactions_with(MemoryRegistry())


def test_local_crash_between_chunks_and_record_keeps_the_old_version(
        local: tuple[LocalVectorStore, LocalDocumentRegistry, IndexingService],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, registry, service = local
    service.index(_doc("A"))
    before = _rows(store.path)

    crash_when_the_record_is_written(monkeypatch)
    with pytest.raises(Crash):
        service.index(_doc("B"))
    assert _rows(store.path) == before  # B's chunks were rolled back with the missing record
    record = registry.get("a")
    assert record is not None and record.status is DocumentStatus.INDEXED


def test_local_crash_of_a_new_document_leaves_nothing(
        local: tuple[LocalVectorStore, LocalDocumentRegistry, IndexingService],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, registry, service = local

    crash_when_the_record_is_written(monkeypatch)
    with pytest.raises(Crash):
        service.index(_doc("A"))
    assert _rows(store.path) == (set(), {})
    assert registry.get("a") is None


def test_local_delete_removes_chunks_and_writes_the_tombstone_together(
        local: tuple[LocalVectorStore, LocalDocumentRegistry, IndexingService],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, _, service = local
    service.index(_doc("A"))
    before = _rows(store.path)

    crash_when_the_record_is_written(monkeypatch)
    with pytest.raises(Crash):
        service.delete("a")
    with pytest.raises(Crash):
        service.apply([Rejection("a", "unsupported")])
    assert _rows(store.path) == before
    monkeypatch.undo()
    service.delete("a")
    chunks, docs = _rows(store.path)
    assert chunks == set() and docs["a"][0] == "deleted"


def test_local_writes_record_no_intent(
        local: tuple[LocalVectorStore, LocalDocumentRegistry, IndexingService],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, _, service = local
    puts: list[str] = []
    original = LocalDocumentRegistry.put

    def spy(self: LocalDocumentRegistry, record: DocumentRecord) -> None:
        puts.append(record.status.value)
        original(self, record)

    monkeypatch.setattr(LocalDocumentRegistry, "put", spy)
    service.index(_doc("A"))
    service.index(_doc("B"))
    service.delete("a")
    assert puts == []  # every record went through the store's transaction
    assert store.count() == 0


# -- other stores: intent first ------------------------------------------------------------------

class CrashingStore(MemoryStore):
    """Dies inside a write, after ``after`` of the write's steps happened."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_after_chunks = False
        self.crash_after_delete = False

    def upsert_document(self, document_id, version, chunks, *, previous_chunk_ids=()):  # type: ignore[no-untyped-def]
        stored = super().upsert_document(document_id, version, chunks,
                                         previous_chunk_ids=previous_chunk_ids)
        if self.crash_after_chunks:
            raise Crash
        return stored

    def delete_document(self, document_id, *, chunk_ids=()):  # type: ignore[no-untyped-def]
        removed = super().delete_document(document_id, chunk_ids=chunk_ids)
        if self.crash_after_delete:
            raise Crash
        return removed


@pytest.fixture
def remote() -> tuple[CrashingStore, MemoryRegistry, IndexingService]:
    store, registry = CrashingStore(), MemoryRegistry()
    return store, registry, _service(store, registry, FakeEmbedder())


def _versions(store: MemoryStore) -> set[str]:
    return {item.chunk.text.split()[0] for item in store.chunks.values()}


def test_intent_is_recorded_before_the_chunks_and_resolved_by_the_next_write(
        remote: tuple[CrashingStore, MemoryRegistry, IndexingService]) -> None:
    store, registry, service = remote
    service.index(_doc("A"))
    acknowledged = registry.get("a")
    assert acknowledged is not None
    store.crash_after_chunks = True
    with pytest.raises(Crash):
        service.index(_doc("B"))
    intent = registry.get("a")
    assert intent is not None
    assert intent.status is DocumentStatus.INDEXING
    assert intent.content_hash == acknowledged.content_hash  # still the acknowledged version
    assert intent.chunk_ids == acknowledged.chunk_ids
    assert intent.pending_version is not None and intent.pending_version != intent.content_hash
    assert _versions(store) == {"B"}  # what the crash left: never acknowledged

    # Readers: in flight within the lease, then failed with the acknowledged fields.
    fresh = DocumentCatalog(registry, max_list_limit=1000, clock=lambda: NOW + timedelta(seconds=5)).get("a")
    assert fresh.status is DocumentStatus.INDEXING
    late = NOW + timedelta(seconds=INTENT_LEASE_SECONDS + 1)
    stale = DocumentCatalog(registry, max_list_limit=1000, clock=lambda: late).get("a")
    assert stale.status is DocumentStatus.FAILED
    assert stale.content_hash == acknowledged.content_hash
    assert stale.error and "interrupted" in stale.error
    (listed,), _ = DocumentCatalog(registry, max_list_limit=1000, clock=lambda: late).list()
    assert listed.status is DocumentStatus.FAILED

    # Re-sending the acknowledged version is not "unchanged": it is written again.
    store.crash_after_chunks = False
    outcome = service.index(_doc("A"))
    assert outcome.status == "indexed"
    assert _versions(store) == {"A"}
    record = registry.get("a")
    assert record is not None and record.status is DocumentStatus.INDEXED
    assert record.pending_version is None and record.pending_since is None


def test_interrupted_new_document_is_listed_and_deletable(
        remote: tuple[CrashingStore, MemoryRegistry, IndexingService]) -> None:
    store, registry, service = remote
    store.crash_after_chunks = True
    with pytest.raises(Crash):
        service.index(_doc("A"))
    late = NOW + timedelta(seconds=INTENT_LEASE_SECONDS + 1)
    (listed,), _ = DocumentCatalog(registry, max_list_limit=1000, clock=lambda: late).list()
    assert (listed.id, listed.status, listed.content_hash) == ("a", DocumentStatus.FAILED, None)
    service.delete("a")
    assert store.chunks == {}


def test_interrupted_delete_is_resolved_by_the_next_write(
        remote: tuple[CrashingStore, MemoryRegistry, IndexingService]) -> None:
    store, registry, service = remote
    service.index(_doc("A"))
    store.crash_after_delete = True
    with pytest.raises(Crash):
        service.delete("a")
    intent = registry.get("a")
    assert intent is not None
    assert (intent.status, intent.pending_version) == (DocumentStatus.INDEXING, PENDING_DELETE)
    store.crash_after_delete = False
    assert service.index(_doc("A")).status == "indexed"  # not "unchanged": chunks were gone
    assert _versions(store) == {"A"}


def test_failed_write_clears_the_intent(
        remote: tuple[CrashingStore, MemoryRegistry, IndexingService]) -> None:
    store, registry, service = remote
    service.index(_doc("A"))
    from solar_rag.errors import VectorStoreError

    store.reject_documents["a"] = VectorStoreError("shard down")
    with pytest.raises(VectorStoreError):
        service.index(_doc("B"))
    record = registry.get("a")
    assert record is not None
    assert (record.status, record.pending_version) == (DocumentStatus.FAILED, None)


def test_a_store_file_from_before_the_intent_columns_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "rag.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1'), ('generation', '0');
        CREATE TABLE documents (id TEXT PRIMARY KEY, status TEXT NOT NULL, title TEXT,
            source TEXT, content_type TEXT NOT NULL, chunks INTEGER NOT NULL, content_hash TEXT,
            metadata TEXT NOT NULL, indexed_at TEXT, updated_at TEXT, error TEXT,
            sequencer TEXT, etag TEXT, version_id TEXT, chunk_ids TEXT NOT NULL);
        INSERT INTO documents VALUES ('old', 'indexed', NULL, NULL, 'text/plain', 1, 'h', '{}',
            NULL, NULL, NULL, NULL, NULL, NULL, '["c1"]');
    """)
    conn.close()
    registry = LocalDocumentRegistry(path)
    old = registry.get("old")
    assert old is not None and old.pending_version is None and old.chunk_ids == ["c1"]
    registry.put(DocumentRecord(id="new", status=DocumentStatus.INDEXING, pending_version="v",
                                pending_since=NOW))
    new = registry.get("new")
    assert new is not None and (new.pending_version, new.pending_since) == ("v", NOW)
    registry.close()
