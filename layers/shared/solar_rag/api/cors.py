"""CORS for browsers calling the API from the configured origins (``CORS_ALLOWED_ORIGINS``).

The preflight alone is not enough: a browser drops every real answer (errors included) that
lacks ``Access-Control-Allow-Origin``. Starlette renders the 500 of an unexpected error in
its outermost ``ServerErrorMiddleware``, outside every middleware added with
``add_middleware``, so the CORS layer wraps the whole built stack instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

ALLOWED_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
ALLOWED_HEADERS = ("Content-Type", "X-Api-Key", "Authorization")
EXPOSED_HEADERS = ("Retry-After",)
MAX_AGE_SECONDS = 3600


def configured_origins() -> tuple[str, ...]:
    """``CORS_ALLOWED_ORIGINS`` from the settings; none when the settings do not load (the
    container reports that error on the first request, with its own message)."""
    from solar_rag.settings import Settings

    try:
        return Settings().cors_origins
    except ValidationError:
        return ()


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Answer CORS for ``origins`` on every response of ``app``, the 500s included."""
    if not origins:
        return
    build_stack = app.build_middleware_stack

    def build_with_cors() -> ASGIApp:
        return CORSMiddleware(
            build_stack(),
            allow_origins=list(origins),
            allow_methods=list(ALLOWED_METHODS),
            allow_headers=list(ALLOWED_HEADERS),
            expose_headers=list(EXPOSED_HEADERS),
            max_age=MAX_AGE_SECONDS,
        )

    app.build_middleware_stack = build_with_cors  # type: ignore[method-assign]
