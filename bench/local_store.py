"""Issue 7.4: the embedded local store vs ChromaDB's embedded (persistent) client.

Both get the same clustered, L2-normalised 1024-d vectors, texts and metadata, on disk in a
temporary directory. Insert throughput, then vector-query latency (p50/p95) with and without
a metadata filter, and recall@10 of both against exact (brute-force) search.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from solar_rag.adapters.local_store import LocalVectorStore
from solar_rag.domain import Chunk, DocumentWrite, EmbeddedChunk, SearchMode, SearchQuery, WriteResult

from bench import corpus
from bench.results import Figure, Section, percentile
from bench.scale import Scale

DIMENSIONS = 1024
TOP_K = 10
CHUNKS_PER_DOCUMENT = 20
DOCUMENTS_PER_WRITE = 10
"""Documents per ``upsert_documents`` call: the indexer writes groups of up to 200,000
characters (``MAX_GROUP_CHARS``), about 200 chunks of 1,000 characters."""
TEAMS = ("billing", "platform", "security", "support", "data", "mobile", "web", "search")
Matrix = npt.NDArray[np.float32]


def vectors(count: int, *, seed: int = 3, clusters: int = 200) -> Matrix:
    """Clustered unit vectors: real embeddings are far from uniform on the sphere."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIMENSIONS), dtype=np.float32)
    members = rng.integers(0, clusters, count)
    data = centres[members] + 0.9 * rng.standard_normal((count, DIMENSIONS), dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return np.asarray(data, dtype=np.float32)


def uniform_vectors(count: int, *, seed: int = 4) -> Matrix:
    """Unit vectors uniform on the sphere: no structure, the worst case for HNSW (and the
    loosest for any pruning), so every k-NN method's recall is put to the test."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((count, DIMENSIONS), dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return np.asarray(data, dtype=np.float32)


DATA_SETS: dict[str, Callable[[int], Matrix]] = {"clustered": vectors, "uniform": uniform_vectors}


def queries(data: Matrix, count: int, *, seed: int = 5) -> Matrix:
    rng = np.random.default_rng(seed)
    picked = data[rng.integers(0, len(data), count)]
    noisy = picked + 0.6 * rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(DIMENSIONS)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return np.asarray(noisy, dtype=np.float32)


def exact_top(data: Matrix, query: npt.NDArray[np.float32],
              allowed: npt.NDArray[np.bool_] | None) -> set[int]:
    scores = data @ query
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    return {int(i) for i in np.argpartition(-scores, TOP_K)[:TOP_K]}


def _teams(count: int) -> list[str]:
    return [TEAMS[(i * 7919) % len(TEAMS)] for i in range(count)]


def _documents(data: Matrix, texts: list[str], teams: list[str]) -> Iterator[tuple[str, list[EmbeddedChunk]]]:
    for start in range(0, len(data), CHUNKS_PER_DOCUMENT):
        doc = f"doc-{start // CHUNKS_PER_DOCUMENT:06d}"
        yield doc, [
            EmbeddedChunk(Chunk(document_id=doc, chunk_id=f"c{i}", index=i - start, text=texts[i],
                                title=None, section=None, start=0, end=len(texts[i]), version="v1",
                                metadata={"team": teams[i]}), data[i].tolist())
            for i in range(start, min(start + CHUNKS_PER_DOCUMENT, len(data)))
        ]


def _written(results: list[WriteResult]) -> None:
    failed = [result for result in results if result.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} documents not written: {failed[0].error}")


def _timed(run: Callable[[npt.NDArray[np.float32]], set[int]], qs: Matrix,
           truth: list[set[int]]) -> tuple[float, float, float]:
    latencies: list[float] = []
    found = 0
    for query, expected in zip(qs, truth, strict=True):
        started = time.perf_counter()
        got = run(query)
        latencies.append((time.perf_counter() - started) * 1000)
        found += len(got & expected)
    return percentile(latencies, 50), percentile(latencies, 95), found / (len(truth) * TOP_K)


def _ours(directory: Path, name: str, data: Matrix, texts: list[str], teams: list[str], qs: Matrix,
          truth: dict[str, list[set[int]]]) -> dict[str, float]:
    store = LocalVectorStore(directory / f"{name}.sqlite3", space=f"bench:{name}:1024",
                             dimensions=DIMENSIONS)
    try:
        started = time.perf_counter()
        batch: list[DocumentWrite] = []
        for doc, chunks in _documents(data, texts, teams):
            batch.append(DocumentWrite(doc, "v1", chunks))
            if len(batch) == DOCUMENTS_PER_WRITE:
                _written(store.upsert_documents(batch))
                batch = []
        if batch:
            _written(store.upsert_documents(batch))
        insert = len(data) / (time.perf_counter() - started)
        results: dict[str, float] = {"insert": insert}
        for label, filters in (("plain", {}), ("filter", {"team": "billing"})):
            def search(query: npt.NDArray[np.float32], filters: dict[str, Any] = filters) -> set[int]:
                hits = store.search(SearchQuery("", query.tolist(), SearchMode.VECTOR, TOP_K, filters))
                return {int(hit.chunk.chunk_id[1:]) for hit in hits}
            search(qs[0])  # the first search loads the vector matrix
            p50, p95, recall = _timed(search, qs, truth[label])
            results |= {f"{label} p50": p50, f"{label} p95": p95, f"{label} recall": recall}
        return results
    finally:
        store.close()


def _chroma(directory: Path, name: str, data: Matrix, texts: list[str], teams: list[str], qs: Matrix,
            truth: dict[str, list[set[int]]]) -> dict[str, float]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(directory / f"chroma-{name}"),
                                       settings=ChromaSettings(anonymized_telemetry=False))
    # No embedding function: vectors are ours, so Chroma never loads (downloads) a model.
    collection = client.create_collection("bench", embedding_function=None)
    batch = min(client.get_max_batch_size(), 5000)
    started = time.perf_counter()
    for first in range(0, len(data), batch):
        last = min(first + batch, len(data))
        collection.add(ids=[f"c{i}" for i in range(first, last)], embeddings=data[first:last],
                       documents=texts[first:last],
                       metadatas=[{"team": teams[i]} for i in range(first, last)])
    insert = len(data) / (time.perf_counter() - started)
    results: dict[str, float] = {"insert": insert}
    for label, where in (("plain", None), ("filter", {"team": "billing"})):
        def search(query: npt.NDArray[np.float32], where: dict[str, Any] | None = where) -> set[int]:
            found = collection.query(query_embeddings=cast(Any, [query]), n_results=TOP_K,
                                     where=where)
            return {int(i[1:]) for i in found["ids"][0]}
        search(qs[0])
        p50, p95, recall = _timed(search, qs, truth[label])
        results |= {f"{label} p50": p50, f"{label} p95": p95, f"{label} recall": recall}
    return results


def _targets(ours: dict[str, float], theirs: dict[str, float] | None) -> dict[str, str]:
    """Issue 17's targets at 100k clustered chunks, met or not, for the figures' notes."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    exact = ours["plain recall"] == 1.0 and ours["filter recall"] == 1.0
    found = {"filter p50": f"issue 17 target ≤ 5 ms: {verdict(ours['filter p50'] <= 5.0)}"}
    if theirs is not None:
        found["insert"] = ("issue 17 target ≥ 10× Chroma: "
                           + verdict(ours["insert"] >= 10 * theirs["insert"]))
        found["plain p50"] = ("issue 17 target ≤ 2× Chroma with recall@10 = 1.0: "
                              + verdict(ours["plain p50"] <= 2 * theirs["plain p50"] and exact))
    return found


def _get(results: dict[str, float] | None, key: str) -> float | None:
    return None if results is None else results[key]


INSERT_TARGET_NOTE = (
    "Issue 17's insert target (≥ 10× Chroma at 100k, clustered) is not met. Why: per-document "
    'transactions are gone (several documents per transaction, WAL checkpoints every 16 MB), so what '
    "is left per chunk is converting the embedder's Python floats to float32 (~17 µs for 1,024 "
    "floats, the largest single cost), the keyword tokenizer, and SQLite's row and FTS5 index "
    'inserts. What would meet it: float32 vectors end to end (embeddings requested as base64 and '
    'decoded straight into numpy, `EmbeddedChunk.vector` an array instead of a list), which removes '
    'the conversion.')


def run(section: Section, scale: Scale) -> None:
    section.notes.append(
        f"{DIMENSIONS}-d unit vectors in 200 clusters (\"clustered\") and uniform on the sphere "
        f"(\"uniform\", the worst case for HNSW); {scale.store_queries} queries near stored "
        f"vectors; filter = one of {len(TEAMS)} teams (~{100 // len(TEAMS)} % of chunks). Ours: "
        "SQLite file + exact search (int8 scan with a proven error bound, float32 re-rank of "
        "every row the bound cannot exclude). Chroma: PersistentClient, default HNSW (l2, which "
        "ranks unit vectors like cosine), our vectors passed in (no embedding model). Insert "
        f"in documents of {CHUNKS_PER_DOCUMENT} chunks, {DOCUMENTS_PER_WRITE} documents per "
        "`upsert_documents` call as the indexer groups them (ours; vectors as Python lists, as "
        "the embedder returns them), and batches of 5,000 (Chroma, numpy arrays).")
    section.notes.append(INSERT_TARGET_NOTE)
    try:
        import chromadb  # noqa: F401
        chroma_missing = None
    except ImportError as exc:
        chroma_missing = f"n/a: {exc} (install the bench group)"
    for size in scale.store_sizes:
        for name, make in DATA_SETS.items():
            _one(section, scale, size, name, make(size), chroma_missing)


def _one(section: Section, scale: Scale, size: int, name: str, data: Matrix,
         chroma_missing: str | None) -> None:
    texts = list(corpus.iter_sentences(size))
    teams = _teams(size)
    qs = queries(data, scale.store_queries)
    allowed = np.array([t == "billing" for t in teams])
    truth = {"plain": [exact_top(data, q, None) for q in qs],
             "filter": [exact_top(data, q, allowed) for q in qs]}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        ours = _ours(Path(tmp), name, data, texts, teams, qs, truth)
        gc.collect()
        theirs = (None if chroma_missing
                  else _chroma(Path(tmp), name, data, texts, teams, qs, truth))
    label = f"{size // 1000}k" + ("" if name == "clustered" else f" {name}")
    note = chroma_missing or ""
    targets = _targets(ours, theirs) if size >= 100_000 and name == "clustered" else {}
    section.add(Figure(f"{label}: insert throughput", "chunks/s", ours["insert"],
                       _get(theirs, "insert"), better="higher",
                       baseline_name="ChromaDB PersistentClient",
                       note=note or targets.get("insert", "")))
    for kind, title in (("plain", "no filter"), ("filter", "metadata filter")):
        for stat in ("p50", "p95"):
            section.add(Figure(f"{label}: query {stat}, {title}", "ms", ours[f"{kind} {stat}"],
                               _get(theirs, f"{kind} {stat}"),
                               baseline_name="ChromaDB PersistentClient",
                               note=note or targets.get(f"{kind} {stat}", "")))
        section.add(Figure(f"{label}: recall@10 vs exact, {title}", "", ours[f"{kind} recall"],
                           _get(theirs, f"{kind} recall"), better="higher",
                           baseline_name="ChromaDB PersistentClient", note=note))
    del data, texts, qs
    gc.collect()
