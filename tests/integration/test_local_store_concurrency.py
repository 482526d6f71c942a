"""Several threads and processes writing one local store file at once, and writers killed
mid-transaction: the file stays sound and every document holds exactly its last version."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest
from solar_rag import errors
from solar_rag.adapters.local_store import DB_FILENAME, LocalDocumentRegistry, LocalVectorStore
from solar_rag.domain import DocumentRecord, DocumentStatus, SearchMode, SearchQuery

from tests.contract.vector_store_contract import DIMENSIONS, embed, make_chunks

SPACE = "test:concurrency"
SHARED_DOCUMENTS = ("shared/0", "shared/1", "shared/2")
ROUNDS = 20
TIMEOUT = 120


def write_rounds(
    data_dir: str,
    worker: str,
    rounds: int,
    seed: int,
    store: LocalVectorStore | None = None,
    registry: LocalDocumentRegistry | None = None,
) -> dict[str, int]:
    """Read-modify-write cycles under the document lock; returns writes made per document."""
    own_store = store is None
    store = store or LocalVectorStore(Path(data_dir), space=SPACE, dimensions=DIMENSIONS)
    registry = registry or LocalDocumentRegistry(Path(data_dir))
    rng = random.Random(seed)
    documents = [*SHARED_DOCUMENTS, f"own/{worker}"]
    writes: dict[str, int] = {}
    for round_number in range(rounds):
        document_id = rng.choice(documents)
        with registry.locked(document_id):
            record = registry.get(document_id)
            count = int(record.metadata.get("writes", 0)) if record else 0
            version = f"{worker}-{round_number}"
            if rng.random() < 0.15:
                store.delete_document(document_id)
                registry.put(DocumentRecord(id=document_id, status=DocumentStatus.DELETED,
                                            content_hash=version, metadata={"writes": count + 1}))
            else:
                texts = [f"{document_id} {version} part {i}" for i in range(rng.randint(1, 6))]
                chunks = make_chunks(document_id, version, texts, {"writer": worker})
                stored = store.upsert_document(document_id, version, chunks)
                registry.put(DocumentRecord(id=document_id, status=DocumentStatus.INDEXED,
                                            chunks=len(stored), content_hash=version,
                                            metadata={"writes": count + 1}, chunk_ids=stored))
        writes[document_id] = writes.get(document_id, 0) + 1
        store.search(SearchQuery(document_id, embed(document_id), SearchMode.HYBRID, 3,
                                 {"document_id": document_id}))
    if own_store:
        store.close()
        registry.close()
    return writes


def test_threads_and_processes_write_concurrently(tmp_path: Path) -> None:
    store = LocalVectorStore(tmp_path, space=SPACE, dimensions=DIMENSIONS)
    registry = LocalDocumentRegistry(tmp_path)
    spawn = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=2, mp_context=spawn) as processes,
        ThreadPoolExecutor(max_workers=3) as threads,
    ):
        futures = [
            processes.submit(write_rounds, str(tmp_path), f"p{i}", ROUNDS, 100 + i)
            for i in range(2)
        ]
        futures += [
            threads.submit(write_rounds, str(tmp_path), f"t{i}", ROUNDS, 200 + i, store, registry)
            for i in range(3)
        ]
        results = [future.result(timeout=TIMEOUT) for future in futures]

    total: dict[str, int] = {}
    for writes in results:
        for document_id, n in writes.items():
            total[document_id] = total.get(document_id, 0) + n
    assert sum(total.values()) == 5 * ROUNDS

    with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT document_id, version, chunk_id FROM chunks").fetchall()
        fts = {r[0] for r in conn.execute("SELECT rowid FROM chunks_fts")}
        chunk_rowids = {r[0] for r in conn.execute("SELECT rowid FROM chunks")}
    assert fts == chunk_rowids

    fresh = LocalVectorStore(tmp_path, space=SPACE, dimensions=DIMENSIONS)
    for document_id, writes_made in total.items():
        record = registry.get(document_id)
        assert record is not None
        assert record.metadata["writes"] == writes_made, "a locked read-modify-write was lost"
        stored = {(version, cid) for doc, version, cid in rows if doc == document_id}
        expected = {(record.content_hash, cid) for cid in record.chunk_ids}
        assert stored == expected, document_id
        for reader in (store, fresh):
            hits = reader.search(SearchQuery(document_id, embed(document_id), SearchMode.VECTOR,
                                             50, {"document_id": document_id}))
            assert sorted(h.chunk.chunk_id for h in hits) == sorted(record.chunk_ids)
    fresh.close()
    store.close()
    registry.close()


def hold_lock(data_dir: str, document_id: str, held: str, release: str) -> None:
    registry = LocalDocumentRegistry(Path(data_dir))
    with registry.locked(document_id):
        Path(held).touch()
        deadline = time.monotonic() + 20
        while not Path(release).exists() and time.monotonic() < deadline:
            time.sleep(0.01)


def test_the_document_lock_holds_across_processes(tmp_path: Path) -> None:
    held, release = tmp_path / "held", tmp_path / "release"
    spawn = multiprocessing.get_context("spawn")
    child = spawn.Process(target=hold_lock, args=(str(tmp_path), "doc", str(held), str(release)))
    child.start()
    try:
        deadline = time.monotonic() + 30
        while not held.exists():
            assert time.monotonic() < deadline and child.is_alive(), "child never took the lock"
            time.sleep(0.01)
        impatient = LocalDocumentRegistry(tmp_path, lock_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(errors.ConcurrentUpdate), impatient.locked("doc"):
            pass
        assert time.monotonic() - started >= 0.3
        with impatient.locked("other-doc"):
            pass
        release.touch()
        patient = LocalDocumentRegistry(tmp_path, lock_timeout=10)
        with patient.locked("doc"):
            pass
    finally:
        release.touch()
        child.join(10)
    assert child.exitcode == 0


def test_a_lock_held_by_a_killed_process_is_freed(tmp_path: Path) -> None:
    held, release = tmp_path / "held", tmp_path / "never"
    spawn = multiprocessing.get_context("spawn")
    child = spawn.Process(target=hold_lock, args=(str(tmp_path), "doc", str(held), str(release)))
    child.start()
    deadline = time.monotonic() + 30
    while not held.exists():
        assert time.monotonic() < deadline and child.is_alive()
        time.sleep(0.01)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    with LocalDocumentRegistry(tmp_path, lock_timeout=5).locked("doc"):
        pass


_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from solar_rag.adapters.local_store import LocalVectorStore
    from solar_rag.domain import Chunk, EmbeddedChunk

    store = LocalVectorStore(Path(sys.argv[1]), space="test:kill", dimensions=32)
    rng = np.random.default_rng(0)
    deadline = time.monotonic() + 60
    i = 0
    while time.monotonic() < deadline:
        version = f"v{i}"
        count = 50 + (i % 7) * 30
        vectors = rng.standard_normal((count, 32)).astype(np.float32).tolist()
        chunks = [
            EmbeddedChunk(Chunk("big", f"big-{version}-{j}", j, f"text {version} {j}", None,
                                None, 0, 1, version), vectors[j])
            for j in range(count)
        ]
        store.upsert_document("big", version, chunks)
        print(i, flush=True)
        i += 1
    """
)


def test_killing_a_writer_mid_transaction_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(3)
    for attempt in range(3):
        process = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            for _ in range(2 + attempt):  # let it commit a few versions first
                assert process.stdout.readline(), "writer died early"
            time.sleep(rng.uniform(0.0, 0.05))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

        with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            versions = conn.execute(
                "SELECT version, count(*) FROM chunks WHERE document_id = 'big' GROUP BY version"
            ).fetchall()
            fts_rows = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        assert len(versions) == 1, versions
        version, count = versions[0]
        assert count == 50 + (int(version[1:]) % 7) * 30
        assert fts_rows == count

    store = LocalVectorStore(tmp_path, space="test:kill", dimensions=32)
    hits = store.search(SearchQuery("x", [1.0] * 32, SearchMode.VECTOR, 500))
    assert len(hits) == count
    store.close()


def test_many_threads_share_one_store_instance(tmp_path: Path) -> None:
    store = LocalVectorStore(tmp_path, space=SPACE, dimensions=DIMENSIONS)
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for round_number in range(15):
                document_id = f"thread-{n}"
                version = f"v{round_number}"
                chunks = make_chunks(document_id, version, [f"{document_id} text {version}"] * 2)
                store.upsert_document(document_id, version, chunks)
                hits = store.search(SearchQuery(document_id, embed(document_id),
                                                SearchMode.HYBRID, 5,
                                                {"document_id": document_id}))
                assert {h.chunk.version for h in hits} == {version}
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(TIMEOUT)
    assert failures == []
    assert store.count() == 12
    store.close()


def test_overlapping_batches_through_the_service_neither_deadlock_nor_mix_versions(
    tmp_path: Path,
) -> None:
    """``index_many`` holds every lock of its batch while it writes: two threads indexing
    the same documents in opposite orders must take them in one order, not block for ever."""
    from solar_rag.composition import Container
    from solar_rag.domain import SourceDocument
    from solar_rag.settings import Settings

    container = Container(Settings(_env_file=None, rag_data_dir=tmp_path / "data",
                                   embedding_dimensions=64))
    service = container.indexing_service
    ids = [f"batch/{i:02d}.txt" for i in range(24)]

    def rounds(worker: int) -> None:
        order = ids if worker == 0 else ids[::-1]
        for round_number in range(4):
            service.index_many([SourceDocument(id=i, text=f"{i} from {worker} round "
                                               f"{round_number}. Some more words.")
                                for i in order])

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(rounds, worker) for worker in (0, 1)]:
            done.result(timeout=TIMEOUT)
    store, registry = container.store, container.registry
    for document_id in ids:
        record = registry.get(document_id)
        assert record is not None and record.status is DocumentStatus.INDEXED
        hits = store.search(SearchQuery(document_id, None, SearchMode.KEYWORD, 50,
                                        {"document_id": document_id}))
        assert {hit.chunk.version for hit in hits} == {record.content_hash}
        assert sorted(hit.chunk.chunk_id for hit in hits) == sorted(record.chunk_ids)
