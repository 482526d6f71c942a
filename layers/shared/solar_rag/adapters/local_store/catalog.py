"""In-memory snapshot of every chunk's vector and filterable fields, for exact k-NN.

A snapshot is immutable and tied to one value of the database's ``generation`` counter (bumped
by every chunk write, from any process). When the generation moves, the next search builds a
new snapshot from the old one: rows that disappeared are dropped, rows that appeared are read,
so a write costs a delta read instead of a full reload.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from solar_rag.domain import FilterValue, MetadataValue, matches_filters

FloatMatrix = npt.NDArray[np.float32]
FloatVector = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ValueKey = tuple[str, Any]

_IN_BATCH = 500


def value_key(value: object) -> ValueKey | None:
    """Hashable key with the equality of ``domain.matches_filters``: bools never equal numbers,
    ints equal floats of the same value. None for values no filter can match."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    return None


def normalise_rows(matrix: FloatMatrix) -> FloatMatrix:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (matrix / norms).astype(np.float32, copy=False)


@dataclass(eq=False)
class Snapshot:
    generation: int
    dimensions: int
    rowids: IntArray  # ascending
    matrix: FloatMatrix  # L2-normalised rows, parallel to rowids
    document_ids: list[str]
    metadata: list[dict[str, MetadataValue]]
    _postings: dict[str, dict[ValueKey, IntArray]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __len__(self) -> int:
        return len(self.document_ids)

    def positions_of(self, rowids: IntArray) -> tuple[IntArray, BoolArray]:
        """Positions of ``rowids`` in this snapshot and whether each is present."""
        if len(self) == 0:
            return np.zeros(len(rowids), np.int64), np.zeros(len(rowids), np.bool_)
        pos = np.searchsorted(self.rowids, rowids).astype(np.int64)
        pos = np.minimum(pos, len(self) - 1)
        return pos, self.rowids[pos] == rowids

    def filter_mask(self, filters: Mapping[str, FilterValue]) -> BoolArray | None:
        """Rows matching ``filters`` (None: no filter, every row)."""
        if not filters:
            return None
        mask = np.ones(len(self), np.bool_)
        for key, wanted in filters.items():
            options: Sequence[object] = wanted if isinstance(wanted, list) else [wanted]
            keys = [value_key(option) for option in options]
            if any(k is None for k in keys):
                return self._oracle_mask(filters)
            postings = self._postings_for(key)
            key_mask = np.zeros(len(self), np.bool_)
            for k in keys:
                hit = postings.get(k)  # type: ignore[arg-type]
                if hit is not None:
                    key_mask[hit] = True
            mask &= key_mask
        return mask

    def _oracle_mask(self, filters: Mapping[str, FilterValue]) -> BoolArray:
        return np.fromiter(
            (matches_filters(m, d, filters) for m, d in zip(self.metadata, self.document_ids,
                                                             strict=True)),
            np.bool_,
            len(self),
        )

    def _postings_for(self, key: str) -> dict[ValueKey, IntArray]:
        with self._lock:
            cached = self._postings.get(key)
            if cached is not None:
                return cached
            lists: dict[ValueKey, list[int]] = {}
            if key == "document_id":
                values: Sequence[object] = self.document_ids
            else:
                values = [m.get(key) for m in self.metadata]
            for position, value in enumerate(values):
                k = value_key(value)
                if k is not None:
                    lists.setdefault(k, []).append(position)
            built = {k: np.asarray(v, np.int64) for k, v in lists.items()}
            self._postings[key] = built
            return built


def empty_snapshot(generation: int, dimensions: int) -> Snapshot:
    return Snapshot(
        generation,
        dimensions,
        np.zeros(0, np.int64),
        np.zeros((0, dimensions), np.float32),
        [],
        [],
    )


class Catalog:
    """The shared current snapshot of one store, refreshed on demand under a lock."""

    def __init__(self, dimensions: int) -> None:
        self._dimensions = dimensions
        self._current = empty_snapshot(-1, dimensions)
        self._lock = threading.Lock()

    def snapshot(self, conn: sqlite3.Connection, generation: int) -> Snapshot:
        """The snapshot for ``generation``; call inside the read transaction that read it."""
        current = self._current
        if current.generation == generation:
            return current
        with self._lock:
            current = self._current
            if current.generation == generation:
                return current
            fresh = _refresh(conn, current, generation)
            if generation > self._current.generation:
                self._current = fresh
            return fresh

    def invalidate(self) -> None:
        with self._lock:
            self._current = empty_snapshot(-1, self._dimensions)


def _refresh(conn: sqlite3.Connection, old: Snapshot, generation: int) -> Snapshot:
    current = np.fromiter(
        (row[0] for row in conn.execute("SELECT rowid FROM chunks ORDER BY rowid")), np.int64
    )
    keep = np.isin(old.rowids, current, assume_unique=True)
    missing = current[np.isin(current, old.rowids, assume_unique=True, invert=True)]
    if keep.all() and len(missing) == 0:
        return Snapshot(generation, old.dimensions, old.rowids, old.matrix, old.document_ids,
                        old.metadata)
    rows: list[tuple[int, str, str, bytes]] = []
    if len(missing) > len(current) // 2:
        wanted = set(missing.tolist())
        rows = [
            row
            for row in conn.execute(
                "SELECT rowid, document_id, metadata, vector FROM chunks ORDER BY rowid"
            )
            if row[0] in wanted
        ]
    else:
        ids = missing.tolist()
        for start in range(0, len(ids), _IN_BATCH):
            batch = ids[start : start + _IN_BATCH]
            marks = ",".join("?" * len(batch))
            rows.extend(
                conn.execute(
                    "SELECT rowid, document_id, metadata, vector FROM chunks "  # noqa: S608
                    f"WHERE rowid IN ({marks})",
                    batch,
                )
            )
    dims = old.dimensions
    new_rowids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    new_matrix = (
        np.frombuffer(b"".join(r[3] for r in rows), np.float32).reshape(len(rows), dims)
        if rows
        else np.zeros((0, dims), np.float32)
    )
    kept_idx = np.flatnonzero(keep)
    rowids = np.concatenate([old.rowids[kept_idx], new_rowids])
    matrix = np.concatenate([old.matrix[kept_idx], normalise_rows(new_matrix)])
    document_ids = [old.document_ids[i] for i in kept_idx.tolist()] + [r[1] for r in rows]
    metadata = [old.metadata[i] for i in kept_idx.tolist()] + [_load_metadata(r[2]) for r in rows]
    if len(rowids) > 1 and not bool(np.all(rowids[1:] > rowids[:-1])):
        order = np.argsort(rowids, kind="stable")
        rowids = rowids[order]
        matrix = matrix[order]
        document_ids = [document_ids[i] for i in order.tolist()]
        metadata = [metadata[i] for i in order.tolist()]
    return Snapshot(generation, dims, rowids, matrix, document_ids, metadata)


def _load_metadata(raw: str) -> dict[str, MetadataValue]:
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


def top_positions(
    snapshot: Snapshot, query: FloatVector, mask: BoolArray | None, limit: int
) -> list[tuple[int, float]]:
    """Exact top ``limit`` (position, cosine) among rows allowed by ``mask``, best first."""
    n = len(snapshot)
    if n == 0 or limit <= 0:
        return []
    if mask is None:
        candidates: IntArray | None = None
        scores = snapshot.matrix @ query
    else:
        candidates = np.flatnonzero(mask)
        if len(candidates) == 0:
            return []
        if len(candidates) * 2 < n:
            scores = snapshot.matrix[candidates] @ query
        else:
            scores = (snapshot.matrix @ query)[candidates]
    k = min(limit, len(scores))
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = part[np.argsort(-scores[part], kind="stable")]
    positions = order if candidates is None else candidates[order]
    return [(int(p), float(scores[o])) for p, o in zip(positions, order, strict=True)]


def query_vector(vector: Sequence[float], dimensions: int,
                 on_error: Callable[[str], Exception]) -> FloatVector:
    if len(vector) != dimensions:
        raise on_error(f"query vector has {len(vector)} dimensions, the store {dimensions}")
    array = np.asarray(vector, np.float32)
    if not np.all(np.isfinite(array)):
        raise on_error("query vector contains NaN or infinity")
    length = float(np.linalg.norm(array))
    return array if length == 0 or not math.isfinite(length) else array / length
