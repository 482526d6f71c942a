"""One table from exceptions to HTTP answers: ``{"detail": message}``, never a stack trace."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from solar_rag.errors import RagError, UpstreamRateLimited

logger = logging.getLogger("solar_rag.api")

RETRY_AFTER_SECONDS = "5"
MAX_ECHOED_CHARS = 200
"""Strings echoed back in a 422 (the ``input`` of an error) are cut to this length."""
MAX_ECHOED_ITEMS = 10
"""Lists and objects echoed back in a 422 keep their first items only."""
MAX_ECHOED_DEPTH = 4
MAX_VALIDATION_ERRORS = 20
"""A 422 lists at most this many errors, then says how many more there were: a 3.5 MB body
of bad filter values answered 15.5 MB (every error echoed its whole input)."""
FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"
"""FastAPI's 400 for a body ``json.loads`` cannot take (not UTF-8, nested too deeply, a number
too long to convert); a JSON syntax error is already a 422."""


async def _rag_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RagError)
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if isinstance(exc, UpstreamRateLimited) else None
    if exc.status >= 500:
        # Not the message at INFO and above: upstream errors may quote the request (document
        # text, questions). The adapters log their own diagnostics (status, request id).
        logger.warning("request failed: %s (HTTP %d)", type(exc).__name__, exc.status)
        logger.debug("request failed: %s", exc.message)
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 list, made safe to encode: the echoed input may hold what JSON cannot
    carry (NaN, Infinity, lone surrogates such as ``"\\ud800"``), which made FastAPI's own
    handler fail with a 500, and may be megabytes long."""
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    shown = [_encodable(jsonable_encoder(_bounded(p, 0)))
             for p in problems[:MAX_VALIDATION_ERRORS]]
    if len(problems) > MAX_VALIDATION_ERRORS:
        shown.append({"type": "too_many_errors", "loc": [], "input": None,
                      "msg": f"{len(problems) - MAX_VALIDATION_ERRORS} more errors not shown"})
    return JSONResponse({"detail": shown}, status_code=422)


def _bounded(value: Any, depth: int) -> Any:
    """``value`` with lists and objects cut to their first items and nesting cut short,
    before anything is encoded (so a huge input costs nothing to answer)."""
    if isinstance(value, dict):
        if depth >= MAX_ECHOED_DEPTH:
            return "{...}"
        items = list(value.items())
        kept = {k: _bounded(v, depth + 1) for k, v in items[:MAX_ECHOED_ITEMS]}
        if len(items) > MAX_ECHOED_ITEMS:
            kept["..."] = f"{len(items) - MAX_ECHOED_ITEMS} more"
        return kept
    if isinstance(value, list | tuple):
        if depth >= MAX_ECHOED_DEPTH:
            return "[...]"
        kept_items = [_bounded(item, depth + 1) for item in value[:MAX_ECHOED_ITEMS]]
        if len(value) > MAX_ECHOED_ITEMS:
            kept_items.append(f"... {len(value) - MAX_ECHOED_ITEMS} more")
        return kept_items
    if isinstance(value, str) and len(value) > MAX_ECHOED_CHARS:
        return value[:MAX_ECHOED_CHARS] + "..."
    return value


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's HTTP errors as usual, except that every undecodable JSON body is a 422."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_BODY_PARSE_ERROR:
        problem = {"type": "json_invalid", "loc": ["body"], "input": {},
                   "msg": "JSON decode error: the body is not UTF-8 JSON within the parser's limits"}
        return JSONResponse({"detail": [problem]}, status_code=422)
    return await http_exception_handler(request, exc)


def _encodable(value: Any) -> Any:
    if isinstance(value, str):
        safe = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
        return safe if len(safe) <= MAX_ECHOED_CHARS else safe[:MAX_ECHOED_CHARS] + "..."
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(_encodable(k)): _encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encodable(item) for item in value]
    return value


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RagError, _rag_error)
    app.add_exception_handler(Exception, _unexpected)
