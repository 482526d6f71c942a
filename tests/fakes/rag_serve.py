"""``rag serve`` as users run it: the installed console script in a subprocess, on a free
port of 127.0.0.1, configured through the environment only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.fakes.processes import health_ok, stop, wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def rag_serve(env: Mapping[str, str], *, cwd: Path, startup_timeout: float = 60.0) -> Iterator[str]:
    """Yields the base URL once ``GET /v1/health`` answers; stops the server afterwards.

    ``cwd`` should be an empty directory: settings also read a ``.env`` file from there."""
    port = free_port()
    rag = Path(sys.executable).with_name("rag")
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("UPSTAGE_", "OPENSEARCH_", "VECTOR_STORE", "RAG_"))}
    environment.update(env)
    log = (cwd / "rag-serve.log").open("w")
    process = subprocess.Popen(
        [str(rag), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until(health_ok(url), process, timeout=startup_timeout, what="rag serve")
        except RuntimeError as error:
            raise RuntimeError(f"{error}:\n{(cwd / 'rag-serve.log').read_text()}") from None
        yield url
    finally:
        stop(process)
        log.close()
