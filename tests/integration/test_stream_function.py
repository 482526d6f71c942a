"""The streaming function's start-up script run as the Lambda Web Adapter runs it
(``functions/stream/run.sh`` with ``LAMBDA_TASK_ROOT`` and ``AWS_LWA_PORT``), against the fake
Upstage: the app answers the adapter's readiness check, streams, and keeps its deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.processes import stop
from tests.fakes.rag_serve import free_port
from tests.fakes.upstage_server import FakeUpstage

ROOT = Path(__file__).resolve().parents[2]
KEY = "up_stream_function_key_0123456789"


@pytest.fixture(scope="module")
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=64) as fake:
        yield fake


def _start(upstage: FakeUpstage, workdir: Path, **extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("UPSTAGE_", "OPENSEARCH_", "VECTOR_STORE", "RAG_"))}
    env.update({
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "stream"),
        "PYTHONPATH": str(ROOT / "layers" / "shared"),
        "AWS_LWA_PORT": str(port),
        "UPSTAGE_API_KEY": KEY, "UPSTAGE_BASE_URL": upstage.base_url,
        "EMBEDDING_DIMENSIONS": "64", "RAG_DATA_DIR": str(workdir / "data"),
        **extra,
    })
    process = subprocess.Popen([str(ROOT / "functions" / "stream" / "run.sh")], cwd=workdir,
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:  # what the adapter's readiness check does (AWS_LWA_READINESS_CHECK_PATH)
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("run.sh did not start the app")
        time.sleep(0.1)


def _index(upstage: FakeUpstage, workdir: Path) -> None:
    from solar_rag.composition import Container
    from solar_rag.domain import SourceDocument
    from solar_rag.settings import Settings

    settings = Settings(_env_file=None, upstage_api_key=KEY, upstage_base_url=upstage.base_url,
                        embedding_dimensions=64, rag_data_dir=workdir / "data")
    Container(settings).indexing_service.index(SourceDocument(
        id="leave.md", text="Employees get 25 days of paid leave per year.", content_type="text/markdown"))


def test_run_sh_serves_streamed_answers(upstage: FakeUpstage, tmp_path: Path) -> None:
    _index(upstage, tmp_path)
    process, url = _start(upstage, tmp_path)
    try:
        upstage.stream_token_delay = 0.02
        with httpx.stream("POST", f"{url}/v1/query", json={"query": "paid leave?", "stream": True},
                          timeout=30) as response:
            assert response.status_code == 200
            names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
        assert names[0] == "citations" and names[-1] == "done" and "delta" in names
        models = httpx.get(f"{url}/v1/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["solar-rag", "solar-pro3"]
        # Only the streaming function's routes are mounted.
        assert httpx.post(f"{url}/v1/documents", json={}, timeout=10).status_code == 404
    finally:
        upstage.stream_token_delay = 0.0
        stop(process)


def test_requests_keep_the_function_budget(upstage: FakeUpstage, tmp_path: Path) -> None:
    _index(upstage, tmp_path)
    process, url = _start(upstage, tmp_path, REQUEST_BUDGET_SECONDS="1",
                          UPSTAGE_TIMEOUT_SECONDS="5")
    try:
        upstage.delay_next(3.0, endpoint="chat")
        started = time.monotonic()
        response = httpx.post(f"{url}/v1/query", json={"query": "paid leave?"}, timeout=30)
        elapsed = time.monotonic() - started
        assert response.status_code == 504, response.text
        # The attempt's timeout was cut to what the 1 s budget left (UPSTAGE_TIMEOUT_SECONDS=5).
        assert json.loads(response.text)["detail"].startswith(
            "Upstage did not answer the chat request within 0.")
        assert elapsed < 2.5
    finally:
        stop(process)
