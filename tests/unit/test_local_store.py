from __future__ import annotations

import dataclasses
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from solar_rag import errors
from solar_rag.adapters.local_store import (
    DB_FILENAME,
    LocalDocumentRegistry,
    LocalVectorStore,
    keyword,
    vector_matrix,
)
from solar_rag.adapters.local_store import store as store_module
from solar_rag.domain import (
    DocumentRecord,
    DocumentStatus,
    EmbeddedChunk,
    Filters,
    FilterValue,
    MetadataValue,
    SearchMode,
    SearchQuery,
    matches_filters,
)

from tests.contract.registry_contract import DocumentRegistryContract
from tests.contract.vector_store_contract import (
    DIMENSIONS,
    VectorStoreContract,
    embed,
    ids,
    keyword_query,
    make_chunks,
    vector_query,
)

SPACE = "test:hashing:64"


def open_store(path: Path, *, space: str = SPACE, dimensions: int = DIMENSIONS
               ) -> LocalVectorStore:
    return LocalVectorStore(path, space=space, dimensions=dimensions)


class TestLocalVectorStoreContract(VectorStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path, dimensions: int) -> Iterator[LocalVectorStore]:
        store = open_store(tmp_path, dimensions=dimensions)
        yield store
        store.close()


class TestLocalRegistryContract(DocumentRegistryContract):
    @pytest.fixture
    def registry(self, tmp_path: Path) -> Iterator[LocalDocumentRegistry]:
        registry = LocalDocumentRegistry(tmp_path)
        yield registry
        registry.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalVectorStore]:
    store = open_store(tmp_path)
    yield store
    store.close()


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path / DB_FILENAME if path.is_dir() else path)


def stored_chunks(path: Path) -> list[tuple[str, str, str]]:
    """(document_id, version, chunk_id) of every row, read directly from the file."""
    with raw(path) as conn:
        return sorted(conn.execute("SELECT document_id, version, chunk_id FROM chunks"))


def assert_fts_in_step(path: Path) -> None:
    with raw(path) as conn:
        chunks = {r[0] for r in conn.execute("SELECT rowid FROM chunks")}
        fts = {r[0] for r in conn.execute("SELECT rowid FROM chunks_fts")}
    assert chunks == fts


# -- opening ---------------------------------------------------------------------------


def test_creates_the_data_directory_and_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    store = open_store(data_dir)
    assert store.path == data_dir / DB_FILENAME
    assert store.path.is_file()
    assert store.kind == "local"
    store.close()


def test_accepts_the_database_file_itself(tmp_path: Path) -> None:
    store = open_store(tmp_path / "custom.sqlite3")
    registry = LocalDocumentRegistry(tmp_path / "custom.sqlite3")
    assert store.path == registry.path == tmp_path / "custom.sqlite3"
    store.close()
    registry.close()


def test_refuses_a_file_built_for_another_embedding_space(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.upsert_document("d", "v1", make_chunks("d", "v1", ["kept"]))
    store.close()

    with pytest.raises(errors.NotConfigured) as info:
        open_store(tmp_path, space="upstage:solar-embedding-2-passage:1024")
    message = info.value.message
    assert "rag reindex" in message and SPACE in message and str(tmp_path) in message
    assert info.value.status == 409
    with pytest.raises(errors.NotConfigured, match="dimensions"):
        open_store(tmp_path, dimensions=32)

    reopened = open_store(tmp_path)
    assert ids(reopened.search(keyword_query("kept"))) == [make_chunks("d", "v1", ["kept"])[0]
                                                           .chunk.chunk_id]
    reopened.close()


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(errors.NotConfigured, match="RAG_DATA_DIR"):
        open_store(tmp_path)


def test_a_file_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    with raw(tmp_path) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(errors.NotConfigured, match="newer"):
        open_store(tmp_path)


def test_a_closed_store_refuses_work(store: LocalVectorStore) -> None:
    store.close()
    with pytest.raises(errors.VectorStoreError):
        store.search(keyword_query("x"))


def test_registry_and_store_share_one_file(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    registry = LocalDocumentRegistry(tmp_path)
    with raw(tmp_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert {"chunks", "documents", "meta", "chunks_fts"} <= tables
    assert mode == "wal"
    store.close()
    registry.close()


# -- writes ----------------------------------------------------------------------------


def test_upsert_returns_the_chunk_ids(store: LocalVectorStore) -> None:
    chunks = make_chunks("d", "v1", ["a", "b"])
    assert store.upsert_document("d", "v1", chunks) == [c.chunk.chunk_id for c in chunks]
    assert store.count() == 2


def _with(chunk: EmbeddedChunk, **changes: Any) -> EmbeddedChunk:
    return EmbeddedChunk(dataclasses.replace(chunk.chunk, **changes), chunk.vector)


Corruption = Callable[[list[EmbeddedChunk]], list[EmbeddedChunk]]


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda c: [c[0], _with(c[1], document_id="other")], id="other-document"),
        pytest.param(lambda c: [c[0], _with(c[1], version="v9")], id="other-version"),
        pytest.param(lambda c: [c[0], _with(c[1], chunk_id=c[0].chunk.chunk_id)],
                     id="repeated-id"),
        pytest.param(lambda c: [c[0], EmbeddedChunk(c[1].chunk, [float("nan")] * DIMENSIONS)],
                     id="nan-vector"),
        pytest.param(lambda c: [c[0], _with(c[1], metadata={"k": [1, 2]})], id="list-metadata"),
        pytest.param(lambda c: [c[0], _with(c[1], metadata={"k": None})], id="null-metadata"),
        pytest.param(lambda c: [c[0], _with(c[1], metadata={"k": float("inf")})],
                     id="inf-metadata"),
    ],
)
def test_invalid_chunks_are_refused_and_change_nothing(store: LocalVectorStore, tmp_path: Path,
                                                       corrupt: Corruption) -> None:
    old = make_chunks("d", "v1", ["old one", "old two"])
    store.upsert_document("d", "v1", old)
    before = stored_chunks(tmp_path)
    new = make_chunks("d", "v2", ["new one", "new two"])
    with pytest.raises(errors.InvalidInput):
        store.upsert_document("d", "v2", corrupt(new))
    assert stored_chunks(tmp_path) == before


def test_a_chunk_id_of_another_document_is_refused(store: LocalVectorStore,
                                                   tmp_path: Path) -> None:
    store.upsert_document("a", "v1", make_chunks("a", "v1", ["alpha"]))
    stolen = _with(make_chunks("b", "v1", ["beta"])[0],
                   chunk_id=make_chunks("a", "v1", ["alpha"])[0].chunk.chunk_id)
    before = stored_chunks(tmp_path)
    with pytest.raises(errors.InvalidInput, match="belongs to document 'a'"):
        store.upsert_document("b", "v1", [stolen])
    assert stored_chunks(tmp_path) == before


def test_a_failure_mid_transaction_leaves_the_old_version(
    store: LocalVectorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = make_chunks("d", "v1", [f"oldword {i}" for i in range(4)])
    store.upsert_document("d", "v1", old)
    before = stored_chunks(tmp_path)
    real = keyword.index_text
    calls = {"n": 0}

    def failing(*parts: str | None) -> str:
        calls["n"] += 1
        if calls["n"] == 3:  # chunk rows are written by now; the FTS rows are half done
            raise OSError("disk vanished")
        return real(*parts)

    monkeypatch.setattr(store_module, "index_text", failing)
    with pytest.raises(OSError, match="disk vanished"):
        store.upsert_document("d", "v2", make_chunks("d", "v2", [f"newword {i}" for i in range(5)]))
    monkeypatch.setattr(store_module, "index_text", real)

    assert calls["n"] == 3
    assert stored_chunks(tmp_path) == before
    assert_fts_in_step(tmp_path)
    assert len(store.search(keyword_query("oldword", top_k=10))) == 4
    assert store.search(keyword_query("newword", top_k=10)) == []
    # and the store still works afterwards
    store.upsert_document("d", "v2", make_chunks("d", "v2", ["newword"]))
    assert len(store.search(keyword_query("newword", top_k=10))) == 1


def test_deletes_keep_the_keyword_index_in_step(store: LocalVectorStore, tmp_path: Path) -> None:
    store.upsert_document("a", "v1", make_chunks("a", "v1", ["x1", "x2", "x3"]))
    store.upsert_document("a", "v2", make_chunks("a", "v2", ["y1"]))
    store.upsert_document("a", "v2", make_chunks("a", "v2", ["y1 again"]))
    store.upsert_document("b", "v1", make_chunks("b", "v1", ["z"]))
    store.delete_document("b")
    assert_fts_in_step(tmp_path)
    assert stored_chunks(tmp_path) == [("a", "v2", make_chunks("a", "v2", ["y"])[0].chunk.chunk_id)]


# -- search inputs -----------------------------------------------------------------------


def test_top_k_must_be_positive(store: LocalVectorStore) -> None:
    with pytest.raises(errors.InvalidInput):
        store.search(SearchQuery("x", None, SearchMode.KEYWORD, top_k=0))


def test_unknown_mode_is_invalid_input(store: LocalVectorStore) -> None:
    with pytest.raises(errors.InvalidInput):
        store.search(SearchQuery("x", None, "fuzzy", top_k=1))  # type: ignore[arg-type]


def test_non_finite_query_vector_is_invalid(store: LocalVectorStore) -> None:
    with pytest.raises(errors.InvalidInput):
        store.search(SearchQuery("x", [float("nan")] * DIMENSIONS, SearchMode.VECTOR))


def test_korean_particles_do_not_hide_the_word(store: LocalVectorStore) -> None:
    chunks = make_chunks("k", "v1", ["서울은 대한민국의 수도이다", "부산에서 만나요", "東京は日本の首都"])
    store.upsert_document("k", "v1", chunks)
    assert ids(store.search(keyword_query("서울")))[:1] == [chunks[0].chunk.chunk_id]
    assert ids(store.search(keyword_query("부산")))[:1] == [chunks[1].chunk.chunk_id]
    assert ids(store.search(keyword_query("대한민국")))[:1] == [chunks[0].chunk.chunk_id]
    assert ids(store.search(keyword_query("東京")))[:1] == [chunks[2].chunk.chunk_id]


# -- the in-memory matrix follows every writer -------------------------------------------


def test_a_second_connection_sees_writes_of_the_first(tmp_path: Path) -> None:
    reader = open_store(tmp_path)
    writer = open_store(tmp_path)
    assert reader.search(vector_query("cached text")) == []

    first = make_chunks("d", "v1", ["cached text", "other text"])
    writer.upsert_document("d", "v1", first)
    assert ids(reader.search(vector_query("cached text", top_k=1))) == [first[0].chunk.chunk_id]

    second = make_chunks("d", "v2", ["replacement words"])
    writer.upsert_document("d", "v2", second)
    assert ids(reader.search(vector_query("cached text", top_k=5))) == [second[0].chunk.chunk_id]

    writer.delete_document("d")
    assert reader.search(vector_query("cached text", top_k=5)) == []
    reader.close()
    writer.close()


def _random_metadata(rng: random.Random) -> dict[str, MetadataValue]:
    pool: list[MetadataValue] = ["a", "b", 0, 1, 2, 1.0, 2.5, True, False]
    return {key: rng.choice(pool) for key in ("k1", "k2") if rng.random() < 0.8}


def _random_filters(rng: random.Random) -> Filters:
    pool: list[MetadataValue] = ["a", "b", 0, 1, 1.0, 2.5, True, False]
    filters: Filters = {}
    for key in rng.sample(["k1", "k2", "document_id"], rng.randint(0, 2)):
        if key == "document_id":
            options: list[FilterValue] = ["d0", "d1", ["d2", "d3"], "nope"]
            filters[key] = rng.choice(options)
        elif rng.random() < 0.4:
            filters[key] = list(rng.sample(pool, rng.randint(0, 3)))
        else:
            filters[key] = rng.choice(pool)
    return filters


def test_vector_search_matches_a_brute_force_oracle_through_writes(tmp_path: Path) -> None:
    """Random upserts/deletes by one instance; another answers exactly like brute force."""
    rng = random.Random(7)
    writer = open_store(tmp_path)
    reader = open_store(tmp_path)
    live: dict[str, list[EmbeddedChunk]] = {}
    for step in range(40):
        document_id = f"d{rng.randrange(6)}"
        if rng.random() < 0.2:
            writer.delete_document(document_id)
            live.pop(document_id, None)
        else:
            texts = [f"w{rng.randrange(30)} w{rng.randrange(30)} w{rng.randrange(30)}"
                     for _ in range(rng.randint(0, 6))]
            chunks = [
                _with(c, metadata=_random_metadata(rng))
                for c in make_chunks(document_id, f"v{step}", texts)
            ]
            writer.upsert_document(document_id, f"v{step}", chunks)
            live[document_id] = chunks
        for _ in range(3):
            filters = _random_filters(rng)
            query_text = f"w{rng.randrange(30)} w{rng.randrange(30)}"
            top_k = rng.randint(1, 12)
            hits = reader.search(vector_query(query_text, top_k=top_k, filters=filters))
            q = np.asarray(embed(query_text), np.float32)
            expected = sorted(
                (
                    (-float(np.dot(q, np.asarray(c.vector, np.float32))), c.chunk.chunk_id)
                    for chunks in live.values()
                    for c in chunks
                    if matches_filters(c.chunk.metadata, c.chunk.document_id, filters)
                ),
            )[:top_k]
            assert len(hits) == len(expected), (step, filters)
            for hit, (neg_score, _) in zip(hits, expected, strict=True):
                assert hit.score == pytest.approx(-neg_score, abs=1e-5)
                assert matches_filters(hit.chunk.metadata, hit.chunk.document_id, filters)
    writer.close()
    reader.close()


def test_keyword_filters_match_the_oracle(store: LocalVectorStore) -> None:
    rng = random.Random(11)
    everything: list[EmbeddedChunk] = []
    for d in range(5):
        chunks = [_with(c, metadata=_random_metadata(rng))
                  for c in make_chunks(f"d{d}", "v1", [f"shared w{i}" for i in range(8)])]
        store.upsert_document(f"d{d}", "v1", chunks)
        everything.extend(chunks)
    for _ in range(60):
        filters = _random_filters(rng)
        expected = {c.chunk.chunk_id for c in everything
                    if matches_filters(c.chunk.metadata, c.chunk.document_id, filters)}
        for mode in (SearchMode.KEYWORD, SearchMode.HYBRID):
            query = SearchQuery("shared", embed("shared"), mode, 100, filters)
            assert set(ids(store.search(query))) == expected, (mode, filters)


def _live_rowids(snapshot: vector_matrix.Snapshot) -> list[int]:
    return sorted(int(r) for r in snapshot.rowids[snapshot.alive])


def test_a_snapshot_can_be_derived_for_an_older_generation(tmp_path: Path) -> None:
    """A reader whose transaction started before a write gets that older view exactly."""
    store = open_store(tmp_path)
    store.upsert_document("a", "v1", make_chunks("a", "v1", ["one", "two", "three"]))
    store.upsert_document("b", "v1", make_chunks("b", "v1", ["four"]))
    old_reader = raw(tmp_path)
    old_reader.isolation_level = None
    old_reader.execute("BEGIN")
    old_rowids = sorted(r[0] for r in old_reader.execute("SELECT rowid FROM chunks"))
    old_generation = int(old_reader.execute(
        "SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    store.upsert_document("a", "v2", make_chunks("a", "v2", ["five"]))
    store.delete_document("b")
    store.search(keyword_query("five"))  # the shared snapshot moves to the new generation
    newer = store._matrix._current
    assert newer.generation > old_generation

    older = vector_matrix.refresh(old_reader, newer, old_generation)
    old_reader.execute("COMMIT")
    old_reader.close()
    assert _live_rowids(older) == old_rowids
    assert len(older.segments) == 1 and bool(older.alive.all())
    assert sorted(older.document_ids) == ["a", "a", "a", "b"]
    store.close()


def test_snapshots_grow_by_segments_and_compact(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for n in range(3):
        store.upsert_document(f"d{n}", "v1", make_chunks(f"d{n}", "v1", ["x"] * 10))
        store.search(keyword_query("x"))
    grown = store._matrix._current
    assert len(grown.segments) == 3 and len(grown) == 30

    store.delete_document("d0")  # a third dead: over the threshold, so compacted
    hits = store.search(vector_query("x", top_k=50))
    compacted = store._matrix._current
    assert len(compacted.segments) == 1 and len(compacted) == 20
    assert bool(compacted.alive.all())
    assert {h.chunk.document_id for h in hits} == {"d1", "d2"}

    store.upsert_document("d1", "v2", make_chunks("d1", "v2", ["x"] * 2))
    hits = store.search(vector_query("x", top_k=50, filters={"document_id": ["d1", "d2"]}))
    assert len(hits) == 12
    store.close()


# -- registry specifics ------------------------------------------------------------------


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalDocumentRegistry]:
    registry = LocalDocumentRegistry(tmp_path, lock_timeout=0.2)
    yield registry
    registry.close()


@pytest.mark.parametrize("limit", [0, -1])
def test_list_limit_is_bounded(registry: LocalDocumentRegistry, limit: int) -> None:
    with pytest.raises(errors.InvalidInput):
        registry.list(limit=limit)


@pytest.mark.parametrize("cursor", ["%%%", "not base64!", "gA"])
def test_a_garbled_cursor_is_invalid_input(registry: LocalDocumentRegistry, cursor: str) -> None:
    with pytest.raises(errors.InvalidInput, match="cursor"):
        registry.list(limit=5, cursor=cursor)


def test_cursors_are_opaque_url_safe_and_resume_after_unicode_ids(
    registry: LocalDocumentRegistry,
) -> None:
    for document_id in ("문서/1", "문서/2", "문서/3"):
        registry.put(DocumentRecord(id=document_id, status=DocumentStatus.INDEXED))
    page, cursor = registry.list(limit=1)
    assert cursor is not None and all(c.isalnum() or c in "-_" for c in cursor)
    rest, end = registry.list(limit=5, cursor=cursor)
    assert [r.id for r in page + rest] == ["문서/1", "문서/2", "문서/3"] and end is None


def test_naive_datetimes_are_taken_as_utc(registry: LocalDocumentRegistry) -> None:
    naive = datetime(2026, 5, 1, 12, 0, 0)
    registry.put(DocumentRecord(id="d", status=DocumentStatus.INDEXED, updated_at=naive))
    loaded = registry.get("d")
    assert loaded is not None and loaded.updated_at == naive.replace(tzinfo=UTC)


def test_registry_metadata_must_be_plain_values(registry: LocalDocumentRegistry) -> None:
    with pytest.raises(errors.InvalidInput):
        registry.put(DocumentRecord(id="d", status=DocumentStatus.INDEXED,
                                    metadata={"nested": {"a": 1}}))  # type: ignore[dict-item]
    assert registry.get("d") is None


def test_lock_timeout_raises_concurrent_update(registry: LocalDocumentRegistry) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with registry.locked("doc"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with pytest.raises(errors.ConcurrentUpdate) as info, registry.locked("doc"):
            pass
        assert time.monotonic() - started >= 0.2
        assert info.value.retryable and info.value.status == 409
    finally:
        release.set()
        thread.join(10)
    with registry.locked("doc"):
        pass


def test_lock_files_live_under_the_data_directory(registry: LocalDocumentRegistry,
                                                  tmp_path: Path) -> None:
    with registry.locked("a/b/../c"):
        files = list((tmp_path / "locks").iterdir())
    assert len(files) == 1 and files[0].suffix == ".lock" and len(files[0].stem) == 64
