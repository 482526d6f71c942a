"""DocumentRegistry in the local SQLite file (table ``documents``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from solar_rag import errors
from solar_rag.adapters.local_store.db import Database
from solar_rag.adapters.local_store.locks import DEFAULT_TIMEOUT_SECONDS, document_lock
from solar_rag.adapters.local_store.validation import validate_metadata
from solar_rag.domain import DocumentRecord, DocumentStatus, Metadata
from solar_rag.paging import decode_cursor, encode_cursor

_COLUMNS = (
    "id, status, title, source, content_type, chunks, content_hash, metadata, indexed_at, "
    "updated_at, error, sequencer, etag, version_id, chunk_ids, pending_version, pending_since"
)


class LocalDocumentRegistry:
    """Registry rows next to the chunks; ``path`` is ``RAG_DATA_DIR`` or the database file."""

    def __init__(self, path: Path, *, lock_timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._db = Database(path)
        self._lock_timeout = lock_timeout

    @property
    def path(self) -> Path:
        return self._db.paths.database

    def close(self) -> None:
        self._db.close()

    def get(self, document_id: str) -> DocumentRecord | None:
        row = (
            self._db.connection()
            .execute(f"SELECT {_COLUMNS} FROM documents WHERE id = ?", (document_id,))  # noqa: S608
            .fetchone()
        )
        return None if row is None else _record(row)

    def put(self, record: DocumentRecord) -> None:
        try:
            with self._db.write() as conn:
                write_record(conn, record)
        except sqlite3.OperationalError as exc:
            raise errors.VectorStoreError(f"local registry write failed: {exc}") from exc

    def list(
        self, *, limit: int, cursor: str | None = None
    ) -> tuple[list[DocumentRecord], str | None]:
        if limit < 1:
            raise errors.InvalidInput("limit must be at least 1")
        after = decode_cursor(cursor) if cursor else None
        sql = f"SELECT {_COLUMNS} FROM documents WHERE status != ?"  # noqa: S608
        params: list[object] = [DocumentStatus.DELETED.value]
        if after is not None:
            sql += " AND id > ?"
            params.append(after)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit + 1)
        rows = self._db.connection().execute(sql, params).fetchall()
        records = [_record(row) for row in rows[:limit]]
        next_cursor = encode_cursor(records[-1].id) if len(rows) > limit else None
        return records, next_cursor

    @contextmanager
    def locked(self, document_id: str) -> Iterator[None]:
        with document_lock(self._db.paths.locks, document_id, timeout=self._lock_timeout):
            yield


def write_record(conn: sqlite3.Connection, record: DocumentRecord) -> None:
    """Store ``record`` through ``conn``, inside the caller's transaction."""
    validate_metadata(record.metadata)
    values = (
        record.id,
        DocumentStatus(record.status).value,
        record.title,
        record.source,
        record.content_type,
        int(record.chunks),
        record.content_hash,
        json.dumps(record.metadata, ensure_ascii=False, allow_nan=False),
        _iso(record.indexed_at),
        _iso(record.updated_at),
        record.error,
        record.sequencer,
        record.etag,
        record.version_id,
        json.dumps(list(record.chunk_ids)),
        record.pending_version,
        _iso(record.pending_since),
    )
    marks = ",".join("?" * len(values))
    conn.execute(
        f"INSERT OR REPLACE INTO documents ({_COLUMNS}) VALUES ({marks})",  # noqa: S608
        values,
    )


def read_records(conn: sqlite3.Connection) -> list[DocumentRecord]:
    """Every registry row (tombstones included), in id order."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM documents ORDER BY id").fetchall()  # noqa: S608
    return [_record(row) for row in rows]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _datetime(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _record(row: tuple[object, ...]) -> DocumentRecord:
    (doc_id, status, title, source, content_type, chunks, content_hash, metadata, indexed_at,
     updated_at, error, sequencer, etag, version_id, chunk_ids, pending_version,
     pending_since) = row
    meta: Metadata = json.loads(str(metadata))
    return DocumentRecord(
        id=str(doc_id),
        status=DocumentStatus(str(status)),
        title=_opt(title),
        source=_opt(source),
        content_type=str(content_type),
        chunks=int(str(chunks)),
        content_hash=_opt(content_hash),
        metadata=meta,
        indexed_at=_datetime(_opt(indexed_at)),
        updated_at=_datetime(_opt(updated_at)),
        error=_opt(error),
        sequencer=_opt(sequencer),
        etag=_opt(etag),
        version_id=_opt(version_id),
        chunk_ids=[str(c) for c in json.loads(str(chunk_ids))],
        pending_version=_opt(pending_version),
        pending_since=_datetime(_opt(pending_since)),
    )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)
