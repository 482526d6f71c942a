"""ASGI middleware: ``OPTIONS`` and 405 answers list every method of the path in ``Allow``.

Starlette answers 405 from the first route whose path matches, with that route's methods
only: ``/v1/documents`` (GET and POST, two routes) said ``Allow: POST``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send


class AllowedMethods:
    def __init__(self, app: ASGIApp, *, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        methods: set[str] = set()
        for route in _flatten(self.routes()):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                await self.app(scope, receive, send)
                return
            if match is Match.PARTIAL:
                methods.update(getattr(route, "methods", None) or ())
        if not methods:
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        if scope["method"] == "OPTIONS":
            await _answer(send, 204, allow, b"")
        else:
            await _answer(send, 405, allow, json.dumps({"detail": "Method Not Allowed"}).encode())


def _flatten(routes: Sequence[BaseRoute]) -> list[BaseRoute]:
    """The routes themselves: FastAPI (0.16x) wraps an included router in one route whose
    partial match names no methods. The routers here are included without a prefix, so their
    routes match the full path."""
    flat: list[BaseRoute] = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            flat.extend(_flatten(inner.routes))
        else:
            flat.append(route)
    return flat


async def _answer(send: Send, status: int, allow: str, body: bytes) -> None:
    headers = [(b"allow", allow.encode("ascii")), (b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
