"""Several processes opening a fresh local store at the same instant all succeed (issue 13.6).

SQLite answers "database is locked" at once, without waiting, to some steps of opening a file
another process is opening (switching to WAL, creating the schema); the store retries them.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
from solar_rag.adapters.local_store import DB_FILENAME, LocalDocumentRegistry, LocalVectorStore
from solar_rag.adapters.local_store import db as db_module
from solar_rag.domain import DocumentRecord, DocumentStatus

from tests.contract.vector_store_contract import DIMENSIONS, make_chunks

SPACE = "test:open-race"
PROCESSES = 6
ROUNDS = 4
ROOT = Path(__file__).resolve().parents[2]
REOPENS = 15
"""Each process opens, writes and closes the store this many times: the last connection to
close checkpoints and removes the WAL, a racy moment for the next open elsewhere."""


def open_and_write(data_dir: str, worker: int, barrier: Barrier,
                   results: multiprocessing.SimpleQueue[str]) -> None:
    results.put(_open_and_write(data_dir, worker, barrier))


def _open_and_write(data_dir: str, worker: int, barrier: Barrier) -> str:
    barrier.wait(timeout=60)
    try:
        for attempt in range(REOPENS):
            store = LocalVectorStore(Path(data_dir), space=SPACE, dimensions=DIMENSIONS)
            registry = LocalDocumentRegistry(Path(data_dir))
            document_id, version = f"doc-{worker}", f"v{attempt}"
            ids = store.upsert_document(document_id, version,
                                        make_chunks(document_id, version, ["alpha", "beta"]))
            registry.put(DocumentRecord(id=document_id, status=DocumentStatus.INDEXED,
                                        chunks=len(ids), content_hash=version, chunk_ids=ids))
            store.close()
            registry.close()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "ok"


def race(root: Path) -> list[str]:
    """Rounds of processes opening a fresh store at once; the failures they report."""
    fork = multiprocessing.get_context("fork")
    failures: list[str] = []
    for round_number in range(ROUNDS):
        data_dir = root / f"round-{round_number}"
        barrier = fork.Barrier(PROCESSES)
        results: multiprocessing.SimpleQueue[str] = fork.SimpleQueue()
        workers = [fork.Process(target=open_and_write, args=(str(data_dir), w, barrier, results))
                   for w in range(PROCESSES)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        failures.extend(r for r in (results.get() for _ in workers) if r != "ok")
        registry = LocalDocumentRegistry(data_dir)
        records, _ = registry.list(limit=100)
        registry.close()
        if len(records) != PROCESSES:
            failures.append(f"round {round_number}: {len(records)} documents")
    return failures


def test_processes_opening_a_fresh_store_at_once_all_succeed(tmp_path: Path) -> None:
    """In its own interpreter: forking pytest (threads left by other tests) could deadlock."""
    run = subprocess.run([sys.executable, "-m", "tests.integration.test_local_store_open_race",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert json.loads(run.stdout) == []


def test_opening_waits_for_a_lock_sqlite_gives_up_on(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holds the file exclusively past SQLite's own busy timeout (here cut to
    20 ms): opening keeps trying instead of failing the request."""
    monkeypatch.setattr(db_module, "BUSY_TIMEOUT_MS", 20)
    path = tmp_path / DB_FILENAME
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # rollback-journal mode: nobody may even read
    release = threading.Timer(0.4, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    try:
        registry = LocalDocumentRegistry(path)
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - started >= 0.3
    registry.put(DocumentRecord(id="a", status=DocumentStatus.INDEXED))
    assert registry.get("a") is not None
    registry.close()


if __name__ == "__main__":
    print(json.dumps(race(Path(sys.argv[1]))))
