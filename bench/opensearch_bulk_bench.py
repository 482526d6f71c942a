"""OpenSearch adapter bulk throughput against the in-memory stub (chunks per second).

    .venv/bin/python bench/opensearch_bulk_bench.py                       # 20k chunks x 1024 dims
    .venv/bin/python bench/opensearch_bulk_bench.py --chunks 2000 --dims 256

The stub runs in its own process (no shared GIL) on 127.0.0.1 and does no indexing work
beyond parsing and storing, so the figures are the client side's ceiling: building the
NDJSON, HTTP round trips, per-item inspection. A real cluster is slower (HNSW graph
building); these numbers say how much the adapter itself costs. Two write paths:

* ``one document``: every chunk in one ``upsert_document`` (pure bulk path);
* ``documents of N``: ``upsert_document`` per document, as the indexer does (bulk, then
  refresh and the stale-chunk ``_delete_by_query`` per document on a domain).

Baseline: ``opensearchpy.helpers.bulk`` on the same sources (chunk_size=500,
max_chunk_bytes=8 MiB, the settings the reference recommends).

The wall-clock rates are bound by the stub (a Python process parsing every NDJSON line; on
the per-document path it also re-evaluates ``_delete_by_query`` and copies its refresh
snapshot per document, which grows with the corpus). ``adapter_cpu_*`` is this process's CPU
time only: the adapter's own cost, the number to compare.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

from opensearchpy import helpers
from solar_rag.adapters.opensearch import (
    BulkLimits,
    OpenSearchVectorStore,
    build_client,
    capabilities_for,
    init_opensearch,
)
from solar_rag.adapters.opensearch.queries import chunk_document, chunk_source_json
from solar_rag.domain import Chunk, EmbeddedChunk, chunk_id_for
from solar_rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
WORDS = "retrieval vector search 서울 날씨 solar panel document chunk embedding index".split()


def unit_vector(rng: random.Random, dims: int) -> list[float]:
    vector = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    length = math.hypot(*vector)
    return [x / length for x in vector]


def make_chunks(document_id: str, count: int, dims: int, rng: random.Random) -> list[EmbeddedChunk]:
    items = []
    for i in range(count):
        text = " ".join(rng.choice(WORDS) for _ in range(120))
        chunk = Chunk(document_id, chunk_id_for(document_id, "v1", i), i, text, "Title", None,
                      0, len(text), "v1", f"s3://bucket/{document_id}", {"lang": "ko", "n": i})
        items.append(EmbeddedChunk(chunk, unit_vector(rng, dims)))
    return items


def start_stub() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.opensearch_stub", "--port", "0", "--no-record"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def run(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(7)
    per_doc = args.per_doc
    documents = [make_chunks(f"doc-{d:05d}", min(per_doc, args.chunks - d * per_doc), args.dims,
                             rng) for d in range(math.ceil(args.chunks / per_doc))]
    every = [item for doc in documents for item in doc]
    one_doc = [EmbeddedChunk(Chunk("big", chunk_id_for("big", "v1", i), i, it.chunk.text,
                                   None, None, 0, 1, "v1"), it.vector)
               for i, it in enumerate(every)]
    process, url = start_stub()
    try:
        settings = Settings(
            _env_file=None, vector_store="opensearch", opensearch_url=url,
            opensearch_endpoint=None, embedding_dimensions=args.dims, opensearch_timeout_seconds=60,
        )
        client = build_client(settings)
        init_opensearch(settings, client)
        store = OpenSearchVectorStore(client, index="rag-chunks", dimensions=args.dims,
                                      capabilities=capabilities_for("domain"),
                                      bulk_limits=BulkLimits(max_bytes=args.max_mib * 1024 * 1024))
        store.ensure_index()

        started, cpu = time.perf_counter(), time.process_time()
        store.upsert_document("big", "v1", one_doc)
        one_seconds = time.perf_counter() - started
        one_cpu = time.process_time() - cpu
        store.delete_document("big")

        started, cpu = time.perf_counter(), time.process_time()
        for doc in documents:
            store.upsert_document(doc[0].chunk.document_id, "v1", doc)
        per_doc_seconds = time.perf_counter() - started
        per_doc_cpu = time.process_time() - cpu

        actions = [{"_index": "rag-chunks", "_id": it.chunk.chunk_id,
                    "_source": chunk_document(it.chunk, it.vector)} for it in one_doc]
        started, cpu = time.perf_counter(), time.process_time()
        ok, errors = helpers.bulk(client, actions, chunk_size=500,
                                  max_chunk_bytes=8 * 1024 * 1024, raise_on_error=False)
        baseline_seconds = time.perf_counter() - started
        baseline_cpu = time.process_time() - cpu
        if ok != len(actions) or errors:
            raise SystemExit(f"baseline bulk failed: {errors[:1]}")

        body_bytes = sum(len(chunk_source_json(it.chunk, it.vector).encode("utf-8"))
                         for it in one_doc[:200])
        baseline_bytes = sum(len(json.dumps(chunk_document(it.chunk, it.vector)).encode("utf-8"))
                             for it in one_doc[:200])
    finally:
        process.terminate()
        process.wait(timeout=10)
    n = len(every)
    return {
        "chunks": n,
        "dims": args.dims,
        "bulk_limit_mib": args.max_mib,
        "source_bytes_per_chunk": round(body_bytes / min(200, n)),
        "helpers_bulk_source_bytes_per_chunk": round(baseline_bytes / min(200, n)),
        "one_document_chunks_per_s": round(n / one_seconds),
        f"documents_of_{per_doc}_chunks_per_s": round(n / per_doc_seconds),
        "helpers_bulk_chunks_per_s": round(n / baseline_seconds),
        "one_document_vs_helpers_bulk": round(baseline_seconds / one_seconds, 2),
        "adapter_cpu_us_per_chunk": round(one_cpu / n * 1e6),
        f"adapter_cpu_us_per_chunk_documents_of_{per_doc}": round(per_doc_cpu / n * 1e6),
        "helpers_bulk_cpu_us_per_chunk": round(baseline_cpu / n * 1e6),
        "adapter_cpu_bound_chunks_per_s": round(n / one_cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--per-doc", type=int, default=100)
    parser.add_argument("--max-mib", type=int, default=8)
    args = parser.parse_args()
    for key, value in run(args).items():
        print(f"{key:>36}: {value}")


if __name__ == "__main__":
    main()
