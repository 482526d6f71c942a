"""``rag serve`` stays responsive while it indexes the hostile documents.

A real server process (uvicorn on 127.0.0.1, the local store, the offline provider) indexes
every hostile Markdown and HTML document of the suite through ``POST /v1/documents``, one
after the other, while ``GET /v1/health`` is called every 20 ms. The slowest health answer
must come within 100 ms. Before issue 13 one 80 KB Markdown document held the GIL inside a
regex for about a minute, and every health call waited for it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.hostile_inputs import HOSTILE, api_document
from tests.fakes.processes import health_ok, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
HEALTH_LIMIT_SECONDS = 0.100
API_INPUTS = [h for h in HOSTILE if h.content_type]
STATUS = {"parses": 200, "UnsupportedDocument": 400, "PayloadTooLarge": 413}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("UPSTAGE_", "PARSE_", "MAX_", "VECTOR_STORE"))}
    env |= {"RAG_DATA_DIR": str(tmp_path / "data"), "EMBEDDING_DIMENSIONS": "256",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "shared"), str(ROOT)])}
    process = subprocess.Popen(
        [sys.executable, "-m", "solar_rag.cli", "serve", "--port", str(port),
         "--log-level", "warning"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(health_ok(url), process, timeout=60, what="rag serve")
        yield url
    finally:
        stop(process)


def _measure(server: str, attempt: int) -> tuple[dict[str, int], list[float]]:
    """Index every API input (under fresh ids) while timing health calls every 20 ms."""
    statuses: dict[str, int] = {}
    failures: list[BaseException] = []

    def index_all() -> None:
        try:
            with httpx.Client(base_url=server, timeout=120) as client:
                for hostile in API_INPUTS:
                    document = api_document(hostile) | {"id": f"{hostile.name}-{attempt}"}
                    response = client.post("/v1/documents", json={"documents": [document]})
                    statuses[hostile.name] = response.status_code
        except BaseException as error:  # reported by the caller
            failures.append(error)

    latencies: list[float] = []
    worker = threading.Thread(target=index_all, name="hostile-indexing")
    with httpx.Client(base_url=server, timeout=10) as health:
        health.get("/v1/health")  # open the connection
        worker.start()
        while worker.is_alive():
            started = time.perf_counter()
            assert health.get("/v1/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.02)
    worker.join()
    assert not failures, failures
    return statuses, sorted(latencies)


def test_health_answers_within_100_ms_while_hostile_documents_are_indexed(server: str) -> None:
    for hostile in API_INPUTS:
        hostile.data()  # build the inputs before timing anything
    # The machine is shared: up to three full runs, for when other jobs starve the process
    # (with nothing to index, health answers here took up to 47 ms at a load average of 7).
    for attempt in range(3):
        statuses, latencies = _measure(server, attempt)
        assert statuses == {h.name: STATUS[h.outcome] for h in API_INPUTS}
        assert len(latencies) >= 100
        if latencies[-1] < HEALTH_LIMIT_SECONDS:
            break
    assert latencies[-1] < HEALTH_LIMIT_SECONDS, (
        f"slowest health answer {latencies[-1] * 1000:.0f} ms, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, over {len(latencies)} calls")
