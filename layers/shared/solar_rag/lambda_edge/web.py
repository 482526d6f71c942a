"""The Lambda edge for the streaming function: the FastAPI app served by uvicorn behind the
AWS Lambda Web Adapter (``functions/stream``), not Mangum.

- One ``Container`` per execution environment, warmed at import (init: boosted CPU, captured
  by SnapStart), as ``lambda_runtime`` does for the others. Not ``instrumented``: the
  per-invocation metrics flush of ``lambda_runtime`` has no equivalent here yet (requests are
  not invocations from the app's point of view); Lambda's and API Gateway's own metrics apply.
- Every request runs under a deadline (``REQUEST_BUDGET_SECONDS``, set by the stack to the
  function's timeout less a margin; default 600 s): it bounds retrieval, connecting to Upstage
  and answers that are not streamed. A streamed answer's pieces are bounded by Upstage's idle timeout
  instead; the function's timeout (up to 15 min) ends the longest streams. See
  docs/decisions.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from solar_rag.composition import Container
from solar_rag.errors import RagError
from solar_rag.lambda_edge.runtime import LAMBDA_MAX_REQUEST_BYTES, lambda_settings, request_limit
from solar_rag.resilience import deadline

logger = logging.getLogger("solar_rag.lambda")

DEFAULT_BUDGET_SECONDS = 600.0
TIMEOUT_MARGIN_SECONDS = 10.0
"""The stack sets ``REQUEST_BUDGET_SECONDS`` to the function's timeout less this."""


class _Container:
    value: Container | None = None


_container = _Container()


def container() -> Container:
    if _container.value is None:
        _container.value = Container(lambda_settings())
    return _container.value


def request_budget(environ: Mapping[str, str] | None = None) -> float:
    env = os.environ if environ is None else environ
    return max(1.0, float(env.get("REQUEST_BUDGET_SECONDS") or DEFAULT_BUDGET_SECONDS))


class RequestDeadline:
    """Pure ASGI middleware: each HTTP request under ``deadline.budget(seconds)``. The
    context variable reaches sync routes and streamed bodies (Starlette copies the context
    into its worker threads)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with deadline.budget(self.seconds):
            await self.app(scope, receive, send)


def create_streaming_app(routers: Sequence[str]) -> ASGIApp:
    from solar_rag.api.app import create_app, services_for

    try:
        container().warm(services_for(routers))
    except RagError as error:  # e.g. invalid settings: the requests answer it (503)
        logger.warning("init: %s", type(error).__name__)

    def provider() -> Container:
        return container()

    # As for the Mangum functions: a synchronous invocation's event is at most 6 MB.
    try:
        current = container().settings
        limit, origins = request_limit(current), current.cors_origins
    except RagError:
        limit, origins = LAMBDA_MAX_REQUEST_BYTES, ()
    app = create_app(provider, routers=routers, max_request_bytes=limit, cors_origins=origins)
    return RequestDeadline(app, request_budget())
