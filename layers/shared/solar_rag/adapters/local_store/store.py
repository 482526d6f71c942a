"""VectorStore on one local SQLite file: exact k-NN (numpy), BM25 (FTS5) and hybrid (RRF)."""

from __future__ import annotations

import json
import sqlite3
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from solar_rag import errors
from solar_rag.adapters.local_store.db import Database
from solar_rag.adapters.local_store.keyword import index_text, match_expression
from solar_rag.adapters.local_store.registry import LocalDocumentRegistry, write_record
from solar_rag.adapters.local_store.sources import write_source
from solar_rag.adapters.local_store.validation import validate_metadata
from solar_rag.adapters.local_store.vector_matrix import (
    BoolArray,
    FloatVector,
    Snapshot,
    VectorMatrix,
    query_vector,
    top_positions,
)
from solar_rag.domain import (
    Chunk,
    DocumentRecord,
    DocumentWrite,
    EmbeddedChunk,
    Filters,
    SearchHit,
    SearchMode,
    SearchQuery,
    SourceDocument,
    WriteResult,
)
from solar_rag.embedding_space import EmbeddingSpace, mismatch
from solar_rag.ports import RecordFor
from solar_rag.retrieval.fusion import DEFAULT_CANDIDATES, CandidatePolicy, reciprocal_rank_fusion
from solar_rag.retrieval.write_plan import require_unique_documents

_IN_BATCH = 500
_FETCH_BATCH = 512

_CHUNK_COLUMNS = (
    "chunk_id, document_id, version, chunk_index, text, title, section, start_offset, "
    "end_offset, source, metadata, page, page_end"
)
_INSERT_CHUNK = (
    f"INSERT INTO chunks (rowid, {_CHUNK_COLUMNS}, vector) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_BATCH_CHUNKS = 4096
"""Most chunks per write transaction of ``upsert_documents`` (16 MB of 1024-d vectors): the
write lock is held for a bounded time, whatever batch the caller gives."""
FloatMatrix = np.ndarray[tuple[int, int], np.dtype[np.float32]]
_BUMP_GENERATION = (
    "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'generation'"
)


class LocalVectorStore:
    """Chunks and vectors in ``<RAG_DATA_DIR>/rag.sqlite3`` (``path`` may also be the file).

    The file is bound to one embedding ``space`` and ``dimensions`` on first use; opening it
    with another raises ``NotConfigured``. Safe to share between threads; several processes
    may use the same file (SQLite WAL; a generation counter keeps every process's in-memory
    vector matrix in step with writes made elsewhere).
    """

    def __init__(self, path: Path, *, space: str, dimensions: int,
                 chunker: str | None = None,
                 candidates: CandidatePolicy = DEFAULT_CANDIDATES) -> None:
        """``chunker``: the chunker's signature, recorded and checked with the space (None:
        not checked, for callers that never chunk)."""
        if dimensions < 1:
            raise errors.NotConfigured("embedding dimensions must be positive")
        self._space = space
        self._candidates = candidates
        self._dimensions = dimensions
        self._chunker = chunker
        self._db = Database(path)
        try:
            self._bind_space()
        except BaseException:
            self._db.close()
            raise
        self._matrix = VectorMatrix(dimensions)

    @property
    def kind(self) -> str:
        return "local"

    @property
    def path(self) -> Path:
        return self._db.paths.database

    @property
    def space(self) -> str:
        return self._space

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def close(self) -> None:
        self._db.close()

    def _bind_space(self) -> None:
        """Record the space on first use (a file without one is taken to be in the
        configured space: it predates the record), else refuse another one. Read first, so
        a retired file (kept for rollback) still opens for reading."""
        with self._db.read() as conn:
            recorded = self._recorded(conn)
        if recorded is None or (self._chunker is not None
                                and self._db.meta(self._db.connection(), "chunker") is None):
            with self._db.write() as conn:
                recorded = self._recorded(conn)
                if recorded is None:
                    conn.executemany(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        [("space", self._space), ("dimensions", str(self._dimensions))])
                if self._chunker is not None and self._db.meta(conn, "chunker") is None:
                    conn.execute("INSERT INTO meta (key, value) VALUES ('chunker', ?)",
                                 (self._chunker,))
        self.check_space()

    def _recorded(self, conn: sqlite3.Connection) -> tuple[str | None, str | None] | None:
        space, dims = self._db.meta(conn, "space"), self._db.meta(conn, "dimensions")
        return None if space is None and dims is None else (space, dims)

    def recorded_space(self) -> EmbeddingSpace | None:
        """The space the file was built in (None while nothing is recorded)."""
        with self._db.read() as conn:
            space = self._db.meta(conn, "space")
            dims = self._db.meta(conn, "dimensions")
            chunker = self._db.meta(conn, "chunker")
        if space is None or dims is None:
            return None
        return EmbeddingSpace(space, int(dims), chunker or "")

    def check_space(self) -> None:
        """``SpaceMismatch`` (naming `rag reindex`) unless the file is in the configured space."""
        recorded = self.recorded_space()
        configured = EmbeddingSpace(self._space, self._dimensions,
                                    self._chunker if self._chunker is not None
                                    else (recorded.chunker if recorded else ""))
        if recorded is not None and recorded != configured:
            raise mismatch(f"the local store {self.path}", recorded, configured)

    # -- writes ------------------------------------------------------------------------

    def upsert_document(
        self,
        document_id: str,
        version: str,
        chunks: Sequence[EmbeddedChunk],
        *,
        previous_chunk_ids: Sequence[str] = (),
    ) -> list[str]:
        """One transaction: write the version's chunks, then drop the document's other
        versions. ``previous_chunk_ids`` is not needed here (deletion is by query)."""
        return self._upsert(document_id, version, chunks, None)

    def upsert_documents(self, writes: Sequence[DocumentWrite]) -> list[WriteResult]:
        """Several documents per transaction (see ``_upsert_batch``)."""
        return self._upsert_batch(writes, None)

    def delete_document(self, document_id: str, *, chunk_ids: Sequence[str] = ()) -> int:
        return self._delete(document_id, None)

    # -- writes with their registry records (AtomicIndexStore) ---------------------------

    def shares_transactions_with(self, registry: object) -> bool:
        """True when ``registry`` keeps its rows in this store's file."""
        return (isinstance(registry, LocalDocumentRegistry)
                and registry.path.resolve() == self.path.resolve())

    def upsert_documents_recorded(self, writes: Sequence[DocumentWrite],
                                  records: Sequence[RecordFor]) -> list[WriteResult]:
        if len(records) != len(writes):
            raise ValueError("one record per write")
        return self._upsert_batch(writes, records)

    def delete_document_recorded(self, record: DocumentRecord) -> int:
        return self._delete(record.id, record)

    def _upsert(self, document_id: str, version: str, chunks: Sequence[EmbeddedChunk],
                record: RecordFor | None, source: SourceDocument | None = None) -> list[str]:
        vectors = self._validate(document_id, version, chunks)
        try:
            with self._db.write() as conn:
                chunk_ids = self._write_version(conn, document_id, version, chunks, vectors,
                                                record, source)
                conn.execute(_BUMP_GENERATION)
        except sqlite3.Error as exc:
            raise errors.VectorStoreError(f"local store write failed: {exc}") from exc
        return chunk_ids

    def _upsert_batch(self, writes: Sequence[DocumentWrite],
                      records: Sequence[RecordFor] | None) -> list[WriteResult]:
        """The documents of one call in shared transactions of up to ``_BATCH_CHUNKS``
        chunks. A crash rolls the whole transaction back, so each document is its old
        version or its new one, never a mixture, and its registry row (``records``) is
        committed with its chunks. A document refused inside the transaction (a chunk id of
        another document, bad record metadata) or an SQLite error rolls the group back, and
        its documents are then written one transaction each, so only the failing ones fail.
        Half the cost of inserting was SQLite's per-transaction work (the commit, an FTS5
        segment per commit, the generation bump): issue 17."""
        require_unique_documents(writes)
        if records is not None and len(records) != len(writes):
            raise ValueError("one record per write")
        results: dict[int, WriteResult] = {}
        valid: list[tuple[int, FloatMatrix]] = []
        for position, write in enumerate(writes):
            try:
                valid.append((position, self._validate(write.document_id, write.version,
                                                       write.chunks)))
            except errors.RagError as error:
                results[position] = WriteResult(write.document_id, error=error)
        for group in _transaction_groups(valid, writes):
            try:
                results |= self._write_group(group, writes, records)
            except (_Refused, sqlite3.Error):  # sqlite3.Error: the COMMIT itself failed
                for position, _ in group:
                    write = writes[position]
                    record = None if records is None else records[position]
                    try:
                        stored = self._upsert(write.document_id, write.version, write.chunks,
                                              record, write.source)
                    except errors.RagError as error:
                        results[position] = WriteResult(write.document_id, error=error)
                    else:
                        results[position] = WriteResult(write.document_id, stored)
            except errors.RagError as error:  # busy: the transaction never started
                results |= {p: WriteResult(writes[p].document_id, error=error) for p, _ in group}
        return [results[position] for position in range(len(writes))]

    def _write_group(self, group: Sequence[tuple[int, FloatMatrix]],
                     writes: Sequence[DocumentWrite],
                     records: Sequence[RecordFor] | None) -> dict[int, WriteResult]:
        results: dict[int, WriteResult] = {}
        with self._db.write() as conn:
            try:
                for position, vectors in group:
                    write = writes[position]
                    record = None if records is None else records[position]
                    stored = self._write_version(conn, write.document_id, write.version,
                                                 write.chunks, vectors, record, write.source)
                    results[position] = WriteResult(write.document_id, stored)
                conn.execute(_BUMP_GENERATION)
            except (errors.RagError, sqlite3.Error) as exc:
                raise _Refused from exc  # rolled back by write()
        return results

    def _write_version(self, conn: sqlite3.Connection, document_id: str, version: str,
                       chunks: Sequence[EmbeddedChunk], vectors: FloatMatrix,
                       record: RecordFor | None, source: SourceDocument | None) -> list[str]:
        """Inside the caller's transaction: the version's chunks, the document's other
        versions dropped, its source (what `rag reindex` reads), its registry row; the caller
        bumps the generation."""
        chunk_ids = [item.chunk.chunk_id for item in chunks]
        existing = self._existing_rows(conn, document_id, chunk_ids)
        self._delete_rows(conn, existing)
        base = _max_rowid_ever(conn)
        rowids = list(range(base + 1, base + 1 + len(chunks)))
        conn.executemany(
            _INSERT_CHUNK,
            (
                (rowid, *_chunk_values(item.chunk), vectors[i].tobytes())
                for i, (rowid, item) in enumerate(zip(rowids, chunks, strict=True))
            ),
        )
        conn.executemany(
            "INSERT INTO chunks_fts (rowid, tokens) VALUES (?, ?)",
            _fts_rows(rowids, chunks),
        )
        stale = [
            row[0]
            for row in conn.execute(
                "SELECT rowid FROM chunks WHERE document_id = ? AND version != ?",
                (document_id, version),
            )
        ]
        self._delete_rows(conn, stale)
        if source is not None:
            write_source(conn, source, version)
        if record is not None:
            write_record(conn, record(list(chunk_ids)))
        return chunk_ids

    def _delete(self, document_id: str, record: DocumentRecord | None,
                keep: str | None = None) -> int:
        sql = "SELECT rowid FROM chunks WHERE document_id = ?"
        params: tuple[str, ...] = (document_id,)
        if keep is not None:
            sql, params = sql + " AND version != ?", (document_id, keep)
        try:
            with self._db.write() as conn:
                rowids = [row[0] for row in conn.execute(sql, params)]
                if rowids:
                    self._delete_rows(conn, rowids)
                    conn.execute(_BUMP_GENERATION)
                if keep is None:
                    conn.execute("DELETE FROM sources WHERE document_id = ?", (document_id,))
                if record is not None:
                    write_record(conn, record)
                return len(rowids)
        except sqlite3.Error as exc:
            raise errors.VectorStoreError(f"local store delete failed: {exc}") from exc

    # -- inventory (StoreInventory) -------------------------------------------------------

    def document_versions(self, document_id: str | None = None) -> dict[str, dict[str, int]]:
        sql = "SELECT document_id, version, count(*) FROM chunks"
        params: tuple[str, ...] = ()
        if document_id is not None:
            sql, params = sql + " WHERE document_id = ?", (document_id,)
        found: dict[str, dict[str, int]] = {}
        with self._db.read() as conn:
            for doc, version, count in conn.execute(sql + " GROUP BY document_id, version",
                                                    params):
                found.setdefault(str(doc), {})[str(version)] = int(count)
        return found

    def remove_versions(self, document_id: str, *, keep: str | None) -> int:
        return self._delete(document_id, None, keep)

    def count(self) -> int:
        """Number of stored chunks (all documents)."""
        row = self._db.connection().execute("SELECT count(*) FROM chunks").fetchone()
        return int(row[0])

    def _validate(
        self, document_id: str, version: str, chunks: Sequence[EmbeddedChunk]
    ) -> FloatMatrix:
        if not document_id:
            raise errors.InvalidInput("document id must not be empty")
        seen: set[str] = set()
        for item in chunks:
            chunk = item.chunk
            if chunk.document_id != document_id:
                raise errors.InvalidInput(
                    f"chunk {chunk.chunk_id!r} belongs to document {chunk.document_id!r}, "
                    f"not {document_id!r}"
                )
            if chunk.version != version:
                raise errors.InvalidInput(
                    f"chunk {chunk.chunk_id!r} has version {chunk.version!r}, not {version!r}"
                )
            if not chunk.chunk_id or chunk.chunk_id in seen:
                raise errors.InvalidInput(f"chunk id {chunk.chunk_id!r} is empty or repeated")
            seen.add(chunk.chunk_id)
            if len(item.vector) != self._dimensions:
                raise errors.InvalidInput(
                    f"chunk {chunk.chunk_id!r} has a vector of {len(item.vector)} dimensions, "
                    f"the store expects {self._dimensions}"
                )
            validate_metadata(chunk.metadata, where=f"chunk {chunk.chunk_id!r} metadata")
        # array.array converts a list of floats in C, ~2x faster than np.asarray of the lists
        packed = b"".join(array("f", item.vector).tobytes() for item in chunks)
        matrix = np.frombuffer(packed, np.float32).reshape(len(chunks), self._dimensions)
        if not np.all(np.isfinite(matrix)):
            raise errors.InvalidInput("vectors must not contain NaN or infinity")
        return matrix

    @staticmethod
    def _existing_rows(
        conn: sqlite3.Connection, document_id: str, chunk_ids: Sequence[str]
    ) -> list[int]:
        """Rowids already holding these chunk ids; a chunk id of another document is refused."""
        rowids: list[int] = []
        for start in range(0, len(chunk_ids), _IN_BATCH):
            batch = list(chunk_ids[start : start + _IN_BATCH])
            marks = ",".join("?" * len(batch))
            for rowid, chunk_id, owner in conn.execute(
                f"SELECT rowid, chunk_id, document_id FROM chunks WHERE chunk_id IN ({marks})",  # noqa: S608
                batch,
            ):
                if owner != document_id:
                    raise errors.InvalidInput(
                        f"chunk id {chunk_id!r} already belongs to document {owner!r}"
                    )
                rowids.append(rowid)
        return rowids

    @staticmethod
    def _delete_rows(conn: sqlite3.Connection, rowids: Sequence[int]) -> None:
        params = [(rowid,) for rowid in rowids]
        conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", params)
        conn.executemany("DELETE FROM chunks WHERE rowid = ?", params)

    # -- search ------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> list[SearchHit]:
        mode = _mode(query.mode)
        if query.top_k < 1:
            raise errors.InvalidInput("top_k must be at least 1")
        filters = _filters(query.filters)
        vector: FloatVector | None = None
        if mode is SearchMode.VECTOR and query.vector is None:
            raise errors.InvalidInput("vector search needs a query vector")
        if mode is not SearchMode.KEYWORD and query.vector is not None:
            vector = query_vector(query.vector, self._dimensions, errors.InvalidInput)
        try:
            with self._db.read() as conn:
                generation = int(self._db.meta(conn, "generation") or 0)
                snapshot = self._matrix.snapshot(conn, generation)
                mask = snapshot.candidates(filters)
                if mode is SearchMode.VECTOR or (mode is SearchMode.HYBRID and vector is None):
                    limit = query.top_k
                else:
                    limit = self._candidates.count(query.top_k)
                lists: list[list[tuple[int, float]]] = []
                if vector is not None:
                    lists.append(
                        [
                            (int(snapshot.rowids[p]), s)
                            for p, s in top_positions(snapshot, vector, mask, limit)
                        ]
                    )
                if mode is not SearchMode.VECTOR:
                    lists.append(_keyword(conn, snapshot, mask, query.text, limit))
                if len(lists) == 1:
                    ranked = lists[0][: query.top_k]
                else:
                    fused = reciprocal_rank_fusion(lists, key=_rowid, top_k=query.top_k)
                    ranked = [(rowid, score) for (rowid, _), score in fused]
                chunks = _fetch_chunks(conn, {rowid for rowid, _ in ranked})
        except sqlite3.Error as exc:
            raise errors.VectorStoreError(f"local store search failed: {exc}") from exc
        return [SearchHit(chunks[rowid], score) for rowid, score in ranked if rowid in chunks]


def _rowid(row: tuple[int, float]) -> int:
    return row[0]


def _keyword(
    conn: sqlite3.Connection, snapshot: Snapshot, mask: BoolArray | None, text: str, limit: int
) -> list[tuple[int, float]]:
    expression = match_expression(text)
    if expression is None:
        return []
    sql = (
        "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
        "ORDER BY bm25(chunks_fts)"
    )
    if mask is None:
        rows = conn.execute(sql + " LIMIT ?", (expression, limit)).fetchall()
        return [(int(rowid), -float(score)) for rowid, score in rows]
    found: list[tuple[int, float]] = []
    cursor = conn.execute(sql, (expression,))
    while len(found) < limit:
        batch = cursor.fetchmany(_FETCH_BATCH)
        if not batch:
            break
        rowids = np.fromiter((row[0] for row in batch), np.int64, len(batch))
        positions, present = snapshot.positions_of(rowids)
        allowed = present & mask[positions]
        found.extend(
            (int(row[0]), -float(row[1]))
            for row, ok in zip(batch, allowed.tolist(), strict=True)
            if ok
        )
    cursor.close()
    return found[:limit]


def _fetch_chunks(conn: sqlite3.Connection, rowids: set[int]) -> dict[int, Chunk]:
    found: dict[int, Chunk] = {}
    ids = sorted(rowids)
    for start in range(0, len(ids), _IN_BATCH):
        batch = ids[start : start + _IN_BATCH]
        marks = ",".join("?" * len(batch))
        for row in conn.execute(
            f"SELECT rowid, {_CHUNK_COLUMNS} FROM chunks WHERE rowid IN ({marks})",  # noqa: S608
            batch,
        ):
            found[int(row[0])] = _chunk(row[1:])
    return found


def _chunk(row: Sequence[object]) -> Chunk:
    (chunk_id, document_id, version, index, text, title, section, start, end, source,
     metadata, page, page_end) = row
    return Chunk(
        document_id=str(document_id),
        chunk_id=str(chunk_id),
        index=_int(index),
        text=str(text),
        title=None if title is None else str(title),
        section=None if section is None else str(section),
        start=_int(start),
        end=_int(end),
        version=str(version),
        source=None if source is None else str(source),
        metadata=json.loads(str(metadata)),
        page=None if page is None else _int(page),
        page_end=None if page_end is None else _int(page_end),
    )


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise errors.VectorStoreError("local store row is corrupt (integer expected)")
    return value


def _chunk_values(chunk: Chunk) -> tuple[object, ...]:
    return (
        chunk.chunk_id,
        chunk.document_id,
        chunk.version,
        chunk.index,
        chunk.text,
        chunk.title,
        chunk.section,
        chunk.start,
        chunk.end,
        chunk.source,
        json.dumps(chunk.metadata, ensure_ascii=False, allow_nan=False),
        chunk.page,
        chunk.page_end,
    )


def _fts_rows(rowids: Sequence[int], chunks: Sequence[EmbeddedChunk]) -> Iterator[tuple[int, str]]:
    for rowid, item in zip(rowids, chunks, strict=True):
        yield rowid, index_text(item.chunk.title, item.chunk.section, item.chunk.text)


class _Refused(Exception):
    """A document of a shared transaction failed: the transaction was rolled back."""


def _transaction_groups(valid: Sequence[tuple[int, FloatMatrix]],
                        writes: Sequence[DocumentWrite]) -> Iterator[list[tuple[int, FloatMatrix]]]:
    """Consecutive documents of at most ``_BATCH_CHUNKS`` chunks (a larger one alone)."""
    group: list[tuple[int, FloatMatrix]] = []
    size = 0
    for item in valid:
        chunks = len(writes[item[0]].chunks)
        if group and size + chunks > _BATCH_CHUNKS:
            yield group
            group, size = [], 0
        group.append(item)
        size += chunks
    if group:
        yield group


def _max_rowid_ever(conn: sqlite3.Connection) -> int:
    """AUTOINCREMENT's high-water mark: rowids are never reused, so caches can diff by rowid."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
    return 0 if row is None else int(row[0])


def _mode(mode: str) -> SearchMode:
    try:
        return SearchMode(mode)
    except ValueError as exc:
        raise errors.InvalidInput(f"unknown search mode {mode!r}") from exc


def _filters(filters: Filters) -> Filters:
    for key in filters:
        if not isinstance(key, str) or not key:
            raise errors.InvalidInput("filter keys must be non-empty strings")
    return filters
