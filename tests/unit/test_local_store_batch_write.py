"""``upsert_documents`` writes several documents per SQLite transaction (issue 17): the same
stored rows and search results as one transaction per document, each document's failure
still its own, and a crash inside the shared transaction leaves every document of it as it
was."""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solar_rag import errors
from solar_rag.adapters.local_store import LocalDocumentRegistry, LocalVectorStore, keyword
from solar_rag.adapters.local_store import registry as registry_module
from solar_rag.adapters.local_store import store as store_module
from solar_rag.domain import DocumentRecord, DocumentStatus, DocumentWrite, EmbeddedChunk
from solar_rag.ports import RecordFor

from tests.contract.vector_store_contract import (
    DIMENSIONS,
    keyword_query,
    make_chunks,
    vector_query,
)
from tests.unit.test_local_store_keyword import _reference_tokenize

SPACE = "test:hashing:64"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


class Crash(BaseException):
    """A process dying: nothing catches it."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalVectorStore]:
    opened = LocalVectorStore(tmp_path, space=SPACE, dimensions=DIMENSIONS)
    yield opened
    opened.close()


def rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        chunks = conn.execute(
            "SELECT c.chunk_id, c.document_id, c.version, c.text, c.metadata, c.vector, f.tokens "
            "FROM chunks c JOIN chunks_fts f ON f.rowid = c.rowid ORDER BY c.chunk_id").fetchall()
        fts = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        assert fts == len(chunks)  # the keyword index has exactly one row per chunk
        return chunks
    finally:
        conn.close()


def documents(count: int, version: str, *, per_document: int = 3) -> list[DocumentWrite]:
    return [DocumentWrite(f"doc-{i}", version, make_chunks(
        f"doc-{i}", version, [f"{version} word{i} part{j} 서울은 shared" for j in range(per_document)]))
        for i in range(count)]


def record_for(write: DocumentWrite, **changes: object) -> RecordFor:
    def build(chunk_ids: list[str]) -> DocumentRecord:
        record = DocumentRecord(id=write.document_id, status=DocumentStatus.INDEXED,
                                title=None, source=None, content_type="text/plain",
                                chunks=len(chunk_ids), content_hash=write.version, metadata={},
                                indexed_at=NOW, updated_at=NOW, chunk_ids=list(chunk_ids))
        return dataclasses.replace(record, **changes)  # type: ignore[arg-type]
    return build


def test_a_batch_stores_what_one_write_per_document_stores(tmp_path: Path) -> None:
    batched = LocalVectorStore(tmp_path / "batched.sqlite3", space=SPACE, dimensions=DIMENSIONS)
    single = LocalVectorStore(tmp_path / "single.sqlite3", space=SPACE, dimensions=DIMENSIONS)
    try:
        for version in ("v1", "v2"):  # the second round replaces every document
            writes = documents(12, version)
            results = batched.upsert_documents(writes)
            assert [r.error for r in results] == [None] * 12
            for write in writes:
                single.upsert_document(write.document_id, write.version, write.chunks)
            assert [r.stored_ids for r in results] == [
                [c.chunk.chunk_id for c in w.chunks] for w in writes]
        assert rows(batched.path) == rows(single.path)
        for query in (keyword_query("word3 서울"), vector_query("v2 word5 part1 서울은 shared")):
            assert batched.search(query) == single.search(query)
    finally:
        batched.close()
        single.close()


def test_transactions_are_bounded_and_still_write_everything(
        store: LocalVectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "_BATCH_CHUNKS", 7)  # 3 chunks a document: 2 per group
    commits: list[int] = []
    real_bump = store_module._BUMP_GENERATION
    conn = store._db.connection()
    conn.set_trace_callback(lambda sql: commits.append(1) if sql == real_bump else None)
    results = store.upsert_documents(documents(5, "v1"))
    conn.set_trace_callback(None)
    assert [r.error for r in results] == [None] * 5
    assert store.count() == 15
    assert len(commits) == 3  # groups of 2, 2 and 1 documents, one generation bump each


def test_a_refused_document_fails_alone(store: LocalVectorStore, tmp_path: Path) -> None:
    store.upsert_documents(documents(3, "v1"))
    before = {r[0]: r for r in rows(store.path)}
    writes = documents(3, "v2")
    stolen = dataclasses.replace(writes[1].chunks[0].chunk,
                                 chunk_id=writes[0].chunks[0].chunk.chunk_id.replace("v2", "v1"))
    # doc-1 claims a chunk id doc-0 holds (v1, until doc-0's v2 replaces it later in the
    # batch), which only the transaction finds out
    assert stolen.chunk_id in before
    bad = DocumentWrite("doc-1", "v2", [EmbeddedChunk(stolen, writes[1].chunks[0].vector),
                                        *writes[1].chunks[1:]])
    invalid = DocumentWrite("doc-3", "v2", [EmbeddedChunk(
        dataclasses.replace(writes[2].chunks[0].chunk, document_id="doc-3"),
        [float("nan")] * DIMENSIONS)])
    results = store.upsert_documents([bad, writes[0], writes[2], invalid])
    assert [r.document_id for r in results] == ["doc-1", "doc-0", "doc-2", "doc-3"]
    assert results[1].error is None and results[2].error is None
    assert isinstance(results[0].error, errors.InvalidInput)
    assert "belongs to document" in str(results[0].error)
    assert isinstance(results[3].error, errors.InvalidInput)
    versions = store.document_versions()
    assert versions == {"doc-0": {"v2": 3}, "doc-1": {"v1": 3}, "doc-2": {"v2": 3}}


def test_a_refused_record_fails_its_document_alone(tmp_path: Path) -> None:
    store = LocalVectorStore(tmp_path, space=SPACE, dimensions=DIMENSIONS)
    registry = LocalDocumentRegistry(tmp_path)
    try:
        writes = documents(3, "v1")
        records = [record_for(writes[0]), record_for(writes[1], metadata={"k": [1]}),
                   record_for(writes[2])]
        results = store.upsert_documents_recorded(writes, records)
        assert [r.error is None for r in results] == [True, False, True]
        assert isinstance(results[1].error, errors.InvalidInput)
        assert store.document_versions() == {"doc-0": {"v1": 3}, "doc-2": {"v1": 3}}
        assert registry.get("doc-1") is None
        stored = registry.get("doc-2")
        assert stored is not None and list(stored.chunk_ids) == results[2].stored_ids
    finally:
        store.close()
        registry.close()


def test_a_crash_inside_the_shared_transaction_changes_no_document(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalVectorStore(tmp_path, space=SPACE, dimensions=DIMENSIONS)
    registry = LocalDocumentRegistry(tmp_path)
    try:
        old = documents(4, "v1")
        store.upsert_documents_recorded(old, [record_for(w) for w in old])
        before = rows(store.path)
        real = registry_module.write_record
        calls = {"n": 0}

        def dies_at_the_third(conn: sqlite3.Connection, record: DocumentRecord) -> None:
            calls["n"] += 1
            if calls["n"] == 3:  # two documents are written inside the transaction by now
                raise Crash
            real(conn, record)

        monkeypatch.setattr(store_module, "write_record", dies_at_the_third)
        new = documents(4, "v2")
        with pytest.raises(Crash):
            store.upsert_documents_recorded(new, [record_for(w) for w in new])
        assert rows(store.path) == before
        assert {r.id: r.content_hash for r in registry.list(limit=10)[0]} == {
            f"doc-{i}": "v1" for i in range(4)}
    finally:
        store.close()
        registry.close()


def test_an_sqlite_error_in_a_batch_is_retried_document_by_document(
        store: LocalVectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real = keyword.index_text

    def index_text(*parts: str | None) -> str:
        if any(part and "word2 " in part for part in parts):
            raise sqlite3.OperationalError("disk I/O error")
        return real(*parts)

    monkeypatch.setattr(store_module, "index_text", index_text)
    with pytest.raises(errors.VectorStoreError, match="disk I/O error"):
        store.upsert_document("doc-2", "v1", documents(3, "v1")[2].chunks)
    results = store.upsert_documents(documents(4, "v1"))
    assert [r.error is None for r in results] == [True, True, False, True]
    assert isinstance(results[2].error, errors.VectorStoreError)
    assert set(store.document_versions()) == {"doc-0", "doc-1", "doc-3"}


ASCII = st.text(alphabet=st.characters(max_codepoint=127), max_size=60)


def test_ascii_is_left_alone_by_nfkc_and_casefold_is_lower() -> None:
    """Why the tokenizer may skip normalisation for ASCII text."""
    for code in range(128):
        char = chr(code)
        assert unicodedata.normalize("NFKC", char) == char
        assert char.casefold() == char.lower()


@settings(max_examples=300, deadline=None)
@given(text=ASCII)
def test_ascii_tokens_equal_the_reference_tokenizer(text: str) -> None:
    assert keyword.tokenize(text) == _reference_tokenize(text)


def test_a_failed_commit_is_retried_document_by_document(
        store: LocalVectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared transaction's COMMIT fails (disk full, say): no document of it is written,
    and each is then tried alone, with SQLite's errors as VectorStoreError, never raw."""
    real_write = store._db.write
    failures = {"left": 1}

    @contextlib.contextmanager
    def failing_commit() -> Iterator[sqlite3.Connection]:
        with real_write() as conn:
            yield conn
            if failures["left"]:
                failures["left"] -= 1
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")  # write() commits this empty one
                raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store._db, "write", failing_commit)
    results = store.upsert_documents(documents(3, "v1"))
    assert [r.error for r in results] == [None] * 3
    assert failures["left"] == 0
    assert store.document_versions() == {f"doc-{i}": {"v1": 3} for i in range(3)}
