"""Run an ASGI app with uvicorn on 127.0.0.1 in a background thread, for over-HTTP tests: the
same runner ``rag eval`` starts the local service with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI
from solar_rag.evaluation.local import serve_app


@contextmanager
def serve(app: FastAPI, *, startup_timeout: float = 10.0) -> Iterator[str]:
    with serve_app(app, name="uvicorn-test", startup_timeout=startup_timeout) as url:
        yield url
