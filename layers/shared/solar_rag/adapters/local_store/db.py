"""The single SQLite file behind the local store and registry: paths, schema, connections.

Connections are per thread (and per process, so a forked child never reuses its parent's);
every write runs in ``BEGIN IMMEDIATE`` so writers queue on SQLite's lock (``busy_timeout``)
instead of failing half-way, and readers see WAL snapshots without blocking writers.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from solar_rag import errors
from solar_rag.adapters.local_store.generations import RetiredCheck
from solar_rag.resilience import retry

DB_FILENAME = "rag.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000
OPEN_DEADLINE_SECONDS = retry.SQLITE_OPEN_SECONDS
WAL_AUTOCHECKPOINT_PAGES = 4096
"""How long opening waits for other processes opening (or writing) the same file."""
_ADDED_COLUMNS = (("documents", "pending_version", "TEXT"), ("documents", "pending_since", "TEXT"),
                  ("chunks", "page", "INTEGER"), ("chunks", "page_end", "INTEGER"))
"""Columns added after schema 1 shipped: added in place to older files."""
_FILE_SUFFIXES = (".sqlite3", ".sqlite", ".db")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    rowid        INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id     TEXT NOT NULL UNIQUE,
    document_id  TEXT NOT NULL,
    version      TEXT NOT NULL,
    chunk_index  INTEGER NOT NULL,
    text         TEXT NOT NULL,
    title        TEXT,
    section      TEXT,
    start_offset INTEGER NOT NULL,
    end_offset   INTEGER NOT NULL,
    source       TEXT,
    metadata     TEXT NOT NULL,
    vector       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks (document_id, version);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    tokens, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS documents (
    id           TEXT PRIMARY KEY,
    status       TEXT NOT NULL,
    title        TEXT,
    source       TEXT,
    content_type TEXT NOT NULL,
    chunks       INTEGER NOT NULL,
    content_hash TEXT,
    metadata     TEXT NOT NULL,
    indexed_at   TEXT,
    updated_at   TEXT,
    error        TEXT,
    sequencer    TEXT,
    etag         TEXT,
    version_id   TEXT,
    chunk_ids    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_live ON documents (status, id);
CREATE TABLE IF NOT EXISTS sources (
    document_id TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    document    TEXT NOT NULL
);
"""
# ``sources``: the submitted text of each document's stored version (JSON of the
# SourceDocument), written with its chunks: what `rag reindex` parses again.


@dataclass(frozen=True, slots=True)
class StorePaths:
    data_dir: Path
    database: Path

    @property
    def locks(self) -> Path:
        return self.data_dir / "locks"


def resolve_paths(path: Path) -> StorePaths:
    """``path`` is the data directory (``RAG_DATA_DIR``) or the database file itself."""
    path = Path(path)
    if path.suffix in _FILE_SUFFIXES and not path.is_dir():
        return StorePaths(path.parent, path)
    return StorePaths(path, path / DB_FILENAME)


class Database:
    """Thread-local connections to one SQLite file, with the schema ensured on open."""

    def __init__(self, path: Path) -> None:
        self.paths = resolve_paths(path)
        try:
            self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise errors.NotConfigured(
                f"cannot create the local data directory {self.paths.data_dir}: {exc.strerror}"
            ) from exc
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self._schema_ready = False
        self._retired = RetiredCheck(self.paths.database)
        self.connection()

    # -- connections -------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        if self._closed:
            raise errors.VectorStoreError("the local store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = self._open()
        self._local.conn = conn
        self._local.pid = os.getpid()
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        """A configured connection. SQLite answers "database is locked" at once, without its
        busy handler, to some steps of opening while another process opens or recovers the
        same file (switching to WAL, creating the schema): those are retried under
        ``retry.SQLITE_OPEN``, so concurrent opens wait instead of failing."""
        try:
            return retry.retrying(retry.SQLITE_OPEN, retry_on=lambda e: isinstance(e, _Busy),
                                  before_sleep=retry.quiet)(self._try_open)
        except _Busy as busy:
            raise errors.NotConfigured(
                f"cannot open the local store {self.paths.database}: {busy} "
                f"(still busy after {OPEN_DEADLINE_SECONDS:.0f} s)"
            ) from busy

    def _try_open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.paths.database,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise errors.NotConfigured(
                f"cannot open the local store {self.paths.database}: {exc}"
            ) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                # another process holds the file in its rollback-journal mode for a moment
                raise _Busy(f"SQLite could not switch to WAL mode yet ({mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint (with its two fsyncs) every 16 MB of WAL rather than every 4 MB: a
            # batch insert spent about 60 % of its commit time in checkpoints (issue 17).
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
            conn.execute("PRAGMA cache_size = -32768")
            if not self._schema_ready:
                self._ensure_schema(conn)
        except _Busy:
            conn.close()
            raise
        except sqlite3.OperationalError as exc:
            conn.close()
            if _is_busy(exc):
                raise _Busy(str(exc)) from exc
            raise errors.NotConfigured(
                f"cannot open the local store {self.paths.database}: {exc}. "
                "Point RAG_DATA_DIR at a new directory or delete the file to start afresh."
            ) from exc
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise errors.NotConfigured(
                f"cannot open the local store {self.paths.database}: {exc}. "
                "Point RAG_DATA_DIR at a new directory or delete the file to start afresh."
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_statements(_SCHEMA):
                conn.execute(statement)
            for table, column, kind in _ADDED_COLUMNS:
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in present:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0')")
            elif int(row[0]) > SCHEMA_VERSION:
                raise errors.NotConfigured(
                    f"{self.paths.database} was written by a newer version of solar-rag "
                    f"(schema {row[0]} > {SCHEMA_VERSION}); upgrade, or use a new RAG_DATA_DIR."
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._schema_ready = True

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all or nothing, even if the process dies inside it."""
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise errors.VectorStoreError(f"local store busy: {exc}") from exc
        if self._retired():
            conn.execute("ROLLBACK")
            raise errors.SpaceMismatch(
                f"the local store {self.paths.database} was replaced by `rag reindex`; this "
                "process still holds the old one, which is kept for `rag reindex --rollback` "
                "but takes no writes: restart the service to use the live store")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same snapshot."""
        conn = self.connection()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def meta(self, conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])


class _Busy(Exception):
    """Another connection holds a lock this step of opening cannot wait for."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _split_statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
