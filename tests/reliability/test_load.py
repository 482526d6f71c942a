"""Bounded load (issue 8.3): 32 concurrent clients of mixed query/search/index calls against the
real local server (``rag serve`` in its own process on 127.0.0.1) with the real local store and
the fake Upstage server. Zero errors; p50/p99 per operation; afterwards the SQLite file passes
``PRAGMA integrity_check`` and every document's chunks belong to one version, the one the
registry records.

CI runs ~12 s; ``RAG_LOAD_SECONDS=60`` runs the 60-s variant, ``RAG_LOAD_CLIENTS`` sets the
number of clients (default 32).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.processes import stop
from tests.fakes.upstage_server import FakeUpstage
from tests.reliability.conftest import Recorder, env_int

KEY = "up_load_3Fh8Jk1Lq6Wr0Ty5"
SECONDS = env_int("RAG_LOAD_SECONDS", 12)
CLIENTS = env_int("RAG_LOAD_CLIENTS", 32)
SHARED_IDS = [f"load/shared-{n:02d}.md" for n in range(12)]  # written by every client
WORDS = ("harbor lantern meadow quartz saffron tundra violet walnut orbit pepper river summit "
         "timber vessel willow anchor cedar delta ember glacier island jasper lagoon").split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=64) as fake:
        yield fake


@pytest.fixture(scope="module")
def server(upstage: FakeUpstage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("load")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UPSTAGE_", "OPENSEARCH_"))}
    env |= {"UPSTAGE_API_KEY": KEY, "UPSTAGE_BASE_URL": upstage.base_url,
            "EMBEDDING_DIMENSIONS": "64", "RAG_DATA_DIR": str(workdir / "data"),
            "VECTOR_STORE": "local", "UPSTAGE_REQUESTS_PER_MINUTE": "1000000",
            "UPSTAGE_TOKENS_PER_MINUTE": "1000000000", "UPSTAGE_TIMEOUT_SECONDS": "10",
            "CHUNK_SIZE_TOKENS": "64", "CHUNK_OVERLAP_TOKENS": "8"}
    rag = Path(sys.executable).with_name("rag")
    process = subprocess.Popen(
        [str(rag), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"rag serve did not start: {process.stderr.read()[-2000:]!r}"
                               if process.stderr else "rag serve did not start")
        time.sleep(0.1)
    try:
        yield Server(url, workdir / "data", process)
    finally:
        stop(process)


def document(doc_id: str, rng: random.Random, revision: str) -> dict[str, Any]:
    paragraphs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 120)))
                  for _ in range(rng.randint(1, 3))]
    return {"id": doc_id, "title": f"{doc_id} {revision}", "content_type": "text/markdown",
            "metadata": {"revision": revision},
            "text": "# Notes\n\n" + "\n\n".join(p.capitalize() + "." for p in paragraphs)}


@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)


async def client_loop(number: int, url: str, deadline: float, results: Results) -> None:
    rng = random.Random(number)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        count = 0
        while time.monotonic() < deadline:
            count += 1
            roll = rng.random()
            if roll < 0.35:
                op, path = "search", "/v1/search"
                body: dict[str, Any] = {"query": " ".join(rng.sample(WORDS, 3)),
                                        "mode": rng.choice(["hybrid", "vector", "keyword"]),
                                        "top_k": rng.randint(1, 10)}
            elif roll < 0.65:
                op, path = "query", "/v1/query"
                body = {"query": f"What about the {rng.choice(WORDS)} and {rng.choice(WORDS)}?"}
            else:
                op, path = "index", "/v1/documents"
                ids = [rng.choice(SHARED_IDS), f"load/client-{number:02d}-{count % 5}.md"]
                body = {"documents": [document(i, rng, f"c{number}n{count}") for i in ids]}
            started = time.perf_counter()
            try:
                response = await http.post(path, json=body)
            except httpx.HTTPError as error:
                results.errors.append(f"{op}: {type(error).__name__}")
                continue
            results.latencies[op].append(time.perf_counter() - started)
            if response.status_code != 200:
                results.errors.append(f"{op}: {response.status_code} {response.text[:200]}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def test_concurrent_clients_see_no_errors_and_the_store_stays_consistent(
        server: Server, upstage: FakeUpstage, figures: Recorder) -> None:
    rng = random.Random(0)
    seed = httpx.post(f"{server.url}/v1/documents", timeout=60, json={
        "documents": [document(i, rng, "seed") for i in SHARED_IDS]})
    assert seed.status_code == 200, seed.text

    results = Results()
    started = time.monotonic()

    async def run() -> None:
        deadline = time.monotonic() + SECONDS
        await asyncio.gather(*(client_loop(n, server.url, deadline, results) for n in range(CLIENTS)))

    asyncio.run(run())
    elapsed = time.monotonic() - started
    total = sum(len(v) for v in results.latencies.values())
    summary = {op: {"requests": len(v), "p50_ms": round(statistics.median(v) * 1000, 1),
                    "p99_ms": round(percentile(v, 0.99) * 1000, 1)}
               for op, v in sorted(results.latencies.items())}
    everything = [x for v in results.latencies.values() for x in v]

    database = server.data_dir / "rag.sqlite3"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchall()
        mixed = db.execute("SELECT document_id, COUNT(DISTINCT version) FROM chunks "
                           "GROUP BY document_id HAVING COUNT(DISTINCT version) > 1").fetchall()
        versions = dict(db.execute("SELECT document_id, MIN(version) FROM chunks GROUP BY document_id"))
        counts = dict(db.execute("SELECT document_id, COUNT(*) FROM chunks GROUP BY document_id"))
        registry = db.execute("SELECT id, content_hash, chunks FROM documents "
                              "WHERE status = 'indexed'").fetchall()
        fts_rows = db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
        chunk_rows = db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    disagreeing = [doc_id for doc_id, content_hash, chunks in registry
                   if versions.get(doc_id) != content_hash or counts.get(doc_id) != chunks]
    orphans = set(versions) - {doc_id for doc_id, _, _ in registry}

    figures(clients=CLIENTS, seconds=round(elapsed, 1), requests=total,
            requests_per_second=round(total / elapsed, 1), errors=len(results.errors),
            p50_ms=round(statistics.median(everything) * 1000, 1),
            p99_ms=round(percentile(everything, 0.99) * 1000, 1), per_operation=summary,
            documents=len(registry), chunks=chunk_rows, integrity_check=integrity[0][0],
            documents_with_mixed_versions=len(mixed), registry_disagreements=len(disagreeing),
            upstage_requests=len(upstage.snapshot()))
    assert results.errors == [], results.errors[:10]
    assert total > CLIENTS and {"search", "query", "index"} <= set(results.latencies)
    assert integrity == [("ok",)]
    assert mixed == [] and disagreeing == [] and not orphans
    assert fts_rows == chunk_rows  # the keyword index matches the chunks
    assert server.process.poll() is None  # the server is still up
