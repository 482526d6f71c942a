"""One table from exceptions to HTTP answers: ``{"detail": message}``, never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from solar_rag.errors import RagError, UpstreamRateLimited

logger = logging.getLogger("solar_rag.api")

RETRY_AFTER_SECONDS = "5"


async def _rag_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagError)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if isinstance(exc, UpstreamRateLimited) else None
    if exc.status >= 500:
        logger.warning("request failed: %s: %s", type(exc).__name__, exc.message)
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(Exception, _unexpected)
