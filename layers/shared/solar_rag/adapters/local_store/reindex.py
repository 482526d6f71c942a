"""`rag reindex` on the local store: the live file read as the corpus, a new generation file
as the target, the progress record inside the target, and the swap of ``live.json``.

The target file (``gen-<n>/rag.sqlite3``) holds its own chunks, registry rows and submitted
texts, like any live file, plus the table ``reindex_progress`` (document id -> the live
version its copy was built from). ``reindex.json`` in the data directory names the target
while a run is under way, so a killed run continues into the same file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from solar_rag import errors
from solar_rag.adapters.local_store.db import BUSY_TIMEOUT_MS
from solar_rag.adapters.local_store.generations import (
    Generations,
    new_generation,
    read_generations,
    swap,
)
from solar_rag.adapters.local_store.registry import LocalDocumentRegistry, read_records
from solar_rag.adapters.local_store.sources import read_source
from solar_rag.domain import DocumentStatus, SourceDocument
from solar_rag.services.reindex import LiveDocument

RUN_FILE = "reindex.json"
_PROGRESS_SCHEMA = ("CREATE TABLE IF NOT EXISTS reindex_progress ("
                    "document_id TEXT PRIMARY KEY, version TEXT NOT NULL)")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


class LocalCorpus:
    """The live file, read (never written) through a connection of its own."""

    def __init__(self, database: Path) -> None:
        if not database.exists():
            raise errors.NotConfigured(f"there is no local store at {database} to re-index")
        self._conn = _connect(database)

    def close(self) -> None:
        self._conn.close()

    def documents(self) -> list[LiveDocument]:
        return [LiveDocument(r.id, r.content_hash, DocumentStatus(r.status), r.chunks)
                for r in read_records(self._conn)]

    def source(self, document: LiveDocument) -> tuple[SourceDocument, str | None] | None:
        return read_source(self._conn, document.id)


class SqliteProgress:
    """The progress record, in a SQLite file beside (or inside) the target's registry."""

    def __init__(self, path: Path, registry: LocalDocumentRegistry) -> None:
        self._conn = _connect(path)
        self._conn.execute(_PROGRESS_SCHEMA)
        self._registry = registry

    def close(self) -> None:
        self._conn.close()

    def built(self) -> dict[str, str]:
        return {str(doc): str(version) for doc, version in
                self._conn.execute("SELECT document_id, version FROM reindex_progress")}

    def mark(self, document_id: str, version: str) -> None:
        self._conn.execute("INSERT OR REPLACE INTO reindex_progress (document_id, version) "
                           "VALUES (?, ?)", (document_id, version))

    def forget(self, document_id: str) -> None:
        self._conn.execute("DELETE FROM reindex_progress WHERE document_id = ?", (document_id,))

    def clear(self) -> None:
        self._conn.execute("DELETE FROM reindex_progress")

    def target_documents(self) -> set[str]:
        found: set[str] = set()
        cursor: str | None = None
        while True:
            records, cursor = self._registry.list(limit=1000, cursor=cursor)
            found.update(r.id for r in records)
            if cursor is None:
                return found


@dataclass(frozen=True, slots=True)
class LocalRun:
    data_dir: Path
    live: str
    target: str
    resumed: bool

    @property
    def live_path(self) -> Path:
        return self.data_dir / self.live

    @property
    def target_path(self) -> Path:
        return self.data_dir / self.target


def plan_run(data_dir: Path, *, rollback: bool = False) -> LocalRun:
    """Where this run reads and writes: the live file, and a new generation (or the one an
    interrupted run was building from the same live file; or, to roll back, the previous)."""
    generations = read_generations(data_dir)
    if not (data_dir / generations.live).exists():
        raise errors.NotConfigured(f"there is no local store at {data_dir / generations.live}: "
                                   "nothing to re-index")
    if rollback:
        return LocalRun(data_dir, generations.live, _previous(data_dir, generations), False)
    run = _read_run(data_dir)
    if run is not None and run.get("from") == generations.live and run.get("target"):
        target = str(run["target"])
        if (data_dir / target).exists():
            return LocalRun(data_dir, generations.live, target, True)
    target = new_generation(data_dir)
    (data_dir / target).parent.mkdir(parents=True, exist_ok=True)
    _write_run(data_dir, {"from": generations.live, "target": target})
    return LocalRun(data_dir, generations.live, target, False)


def start_afresh(run: LocalRun) -> LocalRun:
    """A new generation instead of a resumed one (its space is not the configured one)."""
    target = new_generation(run.data_dir)
    (run.data_dir / target).parent.mkdir(parents=True, exist_ok=True)
    _write_run(run.data_dir, {"from": run.live, "target": target})
    return LocalRun(run.data_dir, run.live, target, False)


def _previous(data_dir: Path, generations: Generations) -> str:
    previous = generations.previous
    if previous is None or not (data_dir / previous).exists():
        raise errors.NotConfigured(
            f"nothing to roll back to in {data_dir}: no earlier store file was kept by "
            "`rag reindex`")
    return previous


@contextmanager
def writes_paused(database: Path) -> Iterator[None]:
    """Hold the live file's write lock: every writer waits (SQLite's busy timeout) and, once
    the swap is made, finds the file retired and refuses (``Database.write``)."""
    conn = _connect(database)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise errors.VectorStoreError(f"cannot pause writes to {database}: {exc}") from exc
    finally:
        conn.close()


def make_live(run: LocalRun) -> Generations:
    swapped = swap(run.data_dir, run.target)
    (run.data_dir / RUN_FILE).unlink(missing_ok=True)
    return swapped


def _read_run(data_dir: Path) -> dict[str, object] | None:
    try:
        body = json.loads((data_dir / RUN_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _write_run(data_dir: Path, body: dict[str, object]) -> None:
    temp = data_dir / f".{RUN_FILE}.tmp"
    with open(temp, "w", encoding="utf-8") as out:
        json.dump(body, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, data_dir / RUN_FILE)
