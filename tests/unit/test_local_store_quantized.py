"""The int8 first pass of the local store's vector search: its error bound, and search results
identical to brute-force float32 search on clustered and uniform data, with and without
filters, over several segments with deleted rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solar_rag.adapters.local_store import LocalVectorStore, quantized, vector_matrix
from solar_rag.domain import Chunk, EmbeddedChunk, SearchMode, SearchQuery

DIMENSIONS = 96
Matrix = npt.NDArray[np.float32]


def _unit(rows: Matrix) -> Matrix:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1
    out: Matrix = (rows / norms).astype(np.float32)
    return out


def _uniform(rng: np.random.Generator, count: int) -> Matrix:
    return _unit(rng.standard_normal((count, DIMENSIONS), dtype=np.float32))


def _clustered(rng: np.random.Generator, count: int) -> Matrix:
    centres = rng.standard_normal((8, DIMENSIONS), dtype=np.float32)
    return _unit(centres[rng.integers(0, 8, count)]
                 + 0.05 * rng.standard_normal((count, DIMENSIONS), dtype=np.float32))


def _spiky(rng: np.random.Generator, count: int) -> Matrix:
    """One dominant component per row: the coarsest int8 step, the largest residuals."""
    rows = 0.01 * rng.standard_normal((count, DIMENSIONS), dtype=np.float32)
    rows[np.arange(count), rng.integers(0, DIMENSIONS, count)] += 5
    return _unit(rows)


KINDS = {"uniform": _uniform, "clustered": _clustered, "spiky": _spiky}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(sorted(KINDS)))
def test_the_bound_covers_the_int8_error(seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    rows = KINDS[kind](rng, 300)
    query = _unit(KINDS[kind](rng, 1))[0]
    codes = quantized.quantize(rows)
    query_codes = quantized.quantize_query(query)
    approx = quantized.approx_scores(codes, query_codes)
    upper = quantized.upper_bounds(approx, codes, query_codes)
    exact = rows.astype(np.float64) @ query.astype(np.float64)
    assert np.all(upper >= exact)
    assert np.all(2 * approx - upper <= exact)  # symmetric: approx - bound is a lower bound
    assert float(np.max(upper - approx)) < 0.05  # and tight enough to prune


def test_zero_rows_and_queries_quantize_without_dividing_by_zero() -> None:
    codes = quantized.quantize(np.zeros((2, DIMENSIONS), np.float32))
    query = quantized.quantize_query(np.zeros(DIMENSIONS, np.float32))
    assert not np.any(codes.codes) and np.all(np.isfinite(codes.scales))
    assert list(quantized.approx_scores(codes, query)) == [0.0, 0.0]


@pytest.fixture
def int8_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests use small stores: take the int8 path at every size, and split scans into threads
    from a few rows on, so both kernels' paths run."""
    monkeypatch.setattr(vector_matrix, "EXACT_SCAN_BELOW", 0)
    monkeypatch.setattr(quantized, "THREADED_FROM", 50)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalVectorStore]:
    opened = LocalVectorStore(tmp_path, space="test:int8", dimensions=DIMENSIONS)
    yield opened
    opened.close()


def _write(store: LocalVectorStore, rows: Matrix, first: int, per_document: int = 25) -> None:
    for start in range(0, len(rows), per_document):
        doc = f"d{(first + start) // per_document}"
        store.upsert_document(doc, "v1", [
            EmbeddedChunk(Chunk(document_id=doc, chunk_id=f"c{first + i}", index=i - start,
                                text="t", title=None, section=None, start=0, end=1,
                                version="v1", metadata={"team": ("a", "b", "c")[(first + i) % 3]}),
                          rows[i].tolist())
            for i in range(start, min(start + per_document, len(rows)))
        ])


def _search(store: LocalVectorStore, query: Matrix, top_k: int,
            filters: dict[str, str]) -> list[int]:
    hits = store.search(SearchQuery("", query.tolist(), SearchMode.VECTOR, top_k,
                                    dict(filters)))
    return [int(hit.chunk.chunk_id[1:]) for hit in hits]


@pytest.mark.usefixtures("int8_everywhere")
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_search_equals_brute_force(store: LocalVectorStore, kind: str) -> None:
    rng = np.random.default_rng(11)
    rows = KINDS[kind](rng, 600)
    _write(store, rows[:300], 0)
    store.search(SearchQuery("", rows[0].tolist(), SearchMode.VECTOR, 1, {}))
    _write(store, rows[300:], 300)  # a second segment
    store.delete_document("d1")  # dead rows inside the first segment
    alive = np.ones(len(rows), np.bool_)
    alive[25:50] = False
    teams = np.array([("a", "b", "c")[i % 3] for i in range(len(rows))])
    queries = _unit(rows[rng.integers(0, len(rows), 30)]
                    + 0.3 * rng.standard_normal((30, DIMENSIONS), dtype=np.float32))
    for query in queries:
        for top_k, filters in ((10, {}), (40, {}), (10, {"team": "b"})):
            allowed = alive if not filters else alive & (teams == filters["team"])
            scores = np.where(allowed, rows @ query, -np.inf)
            expected = np.argsort(-scores, kind="stable")[:top_k]
            got = _search(store, query, top_k, filters)
            assert set(got) == {int(i) for i in expected}
            assert np.all(np.diff(scores[got]) <= 1e-6)  # best first


@pytest.mark.usefixtures("int8_everywhere")
def test_a_filtered_search_scans_only_the_rows_it_allows(
        store: LocalVectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _uniform(np.random.default_rng(5), 300)
    _write(store, rows, 0)
    scanned: list[int] = []
    real = quantized.approx_scores

    def counting(codes: quantized.Codes, query: quantized.QueryCodes
                 ) -> npt.NDArray[np.float64]:
        scanned.append(len(codes))
        return real(codes, query)

    monkeypatch.setattr(vector_matrix, "approx_scores", counting)
    got = _search(store, rows[7], 5, {"team": "b"})
    assert scanned == [100]  # the 100 chunks of team b, not the 300 of the store
    assert all(i % 3 == 1 for i in got)
    scanned.clear()
    _search(store, rows[7], 5, {})
    assert scanned == [300]
