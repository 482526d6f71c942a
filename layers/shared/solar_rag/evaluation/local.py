"""The local service, started in this process for ``rag eval`` without ``--url``: the same app
as ``rag serve`` on 127.0.0.1 (a free port), so the run goes through HTTP like any other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import uvicorn

from solar_rag.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

STARTUP_TIMEOUT_SECONDS = 30.0


@contextmanager
def local_service(settings: Settings) -> Iterator[str]:
    """Yields the service's base URL; stops it afterwards."""
    from solar_rag.api.app import create_app
    from solar_rag.composition import Container

    container = Container(settings)
    with serve_app(create_app(lambda: container, max_request_bytes=settings.max_request_bytes),
                   name="rag-eval-service") as url:
        yield url


@contextmanager
def serve_app(app: FastAPI, *, name: str = "rag-local-service",
              startup_timeout: float = STARTUP_TIMEOUT_SECONDS) -> Iterator[str]:
    """Runs ``app`` with uvicorn on 127.0.0.1 (a free port) in a background thread; yields
    its base URL and stops it afterwards."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the local service did not start (is the port range exhausted?)")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
