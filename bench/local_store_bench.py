"""Local store benchmark: insert throughput and query latency at a few corpus sizes.

    .venv/bin/python bench/local_store_bench.py                 # 10k and 100k chunks, 1024 dims
    .venv/bin/python bench/local_store_bench.py --sizes 2000 --dims 256 --queries 50

Vectors are random (the store does exact k-NN, so latency does not depend on their content);
texts are random words from a fixed vocabulary. Filters select 10% of the chunks.
"""

from __future__ import annotations

import os

# what solar_rag.adapters.local_store sets when it is imported before numpy (see there)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from solar_rag.adapters.local_store import LocalVectorStore
from solar_rag.domain import Chunk, EmbeddedChunk, SearchMode, SearchQuery

GROUPS = 10


def vocabulary(rng: np.random.Generator, size: int = 5000) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(size)]


def document(
    rng: np.random.Generator, words: list[str], number: int, chunks: int, dims: int
) -> list[EmbeddedChunk]:
    vectors = rng.standard_normal((chunks, dims), dtype=np.float32).tolist()
    items = []
    for j in range(chunks):
        text = " ".join(words[k] for k in rng.integers(0, len(words), 40))
        chunk = Chunk(
            document_id=f"doc-{number}",
            chunk_id=f"doc-{number}-{j}",
            index=j,
            text=text,
            title=f"Document {number}",
            section=None,
            start=0,
            end=len(text),
            version="v1",
            metadata={"group": (number * chunks + j) % GROUPS, "lang": "en"},
        )
        items.append(EmbeddedChunk(chunk, vectors[j]))
    return items


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms"


def run(size: int, dims: int, per_doc: int, queries: int, root: Path) -> None:
    rng = np.random.default_rng(size)
    words = vocabulary(rng)
    store = LocalVectorStore(root / f"n{size}", space="bench", dimensions=dims)
    documents = max(1, size // per_doc)
    insert_seconds = 0.0
    for number in range(documents):
        chunks = document(rng, words, number, per_doc, dims)
        start = time.perf_counter()
        store.upsert_document(f"doc-{number}", "v1", chunks)
        insert_seconds += time.perf_counter() - start
    total = documents * per_doc
    size_mb = store.path.stat().st_size / 1e6
    print(f"\n== {total:,} chunks x {dims} dims ({documents} documents, file {size_mb:,.0f} MB)")
    print(f"insert              {total / insert_seconds:10,.0f} chunks/s  ({insert_seconds:.1f} s)")

    def query_vector() -> list[float]:
        return rng.standard_normal(dims, dtype=np.float32).tolist()  # type: ignore[no-any-return]

    start = time.perf_counter()
    store.search(SearchQuery("", query_vector(), SearchMode.VECTOR, 10))
    print(f"first query (loads the matrix)        {1000 * (time.perf_counter() - start):8.1f} ms")

    vectors = [query_vector() for _ in range(queries)]
    texts = [" ".join(words[k] for k in rng.integers(0, len(words), 3)) for _ in range(queries)]
    cases: list[tuple[str, Callable[[int], SearchQuery]]] = [
        ("vector", lambda i: SearchQuery("", vectors[i], SearchMode.VECTOR, 10)),
        ("vector + filter", lambda i: SearchQuery("", vectors[i], SearchMode.VECTOR, 10,
                                                  {"group": 3})),
        ("keyword", lambda i: SearchQuery(texts[i], None, SearchMode.KEYWORD, 10)),
        ("keyword + filter", lambda i: SearchQuery(texts[i], None, SearchMode.KEYWORD, 10,
                                                   {"group": 3})),
        ("hybrid", lambda i: SearchQuery(texts[i], vectors[i], SearchMode.HYBRID, 10)),
        ("hybrid + filter", lambda i: SearchQuery(texts[i], vectors[i], SearchMode.HYBRID, 10,
                                                  {"group": 3})),
    ]
    for name, make in cases:
        prepared = [make(i) for i in range(queries)]
        samples = []
        for query in prepared:
            start = time.perf_counter()
            store.search(query)
            samples.append(time.perf_counter() - start)
        print(f"{name:<20}{percentiles(samples)}")

    # one more document written elsewhere: the next query pays the delta refresh
    other = LocalVectorStore(root / f"n{size}", space="bench", dimensions=dims)
    refresh = []
    for n in range(5):
        other.upsert_document("extra", f"v{n}", [
            EmbeddedChunk(Chunk("extra", f"extra-{n}-{j}", j, "extra", None, None, 0, 5,
                                f"v{n}"), query_vector())
            for j in range(per_doc)
        ])
        start = time.perf_counter()
        store.search(SearchQuery("", query_vector(), SearchMode.VECTOR, 10))
        refresh.append(time.perf_counter() - start)
    print(f"{'query after a write':<20}{percentiles(refresh)}  (delta refresh of the matrix)")
    other.close()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--per-doc", type=int, default=100, help="chunks per document")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--dir", type=Path, default=None, help="where to build (default: tmp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        for size in args.sizes:
            run(size, args.dims, args.per_doc, args.queries, Path(root))


if __name__ == "__main__":
    main()
