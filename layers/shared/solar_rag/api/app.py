"""FastAPI application factory. Lambda functions mount the routers they serve."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from fastapi import APIRouter, FastAPI

from solar_rag.api.allow import AllowedMethods
from solar_rag.api.cors import configured_origins, install_cors
from solar_rag.api.errors import install_error_handlers
from solar_rag.api.limits import BodySizeLimit
from solar_rag.api.schemas import ErrorOut
from solar_rag.composition import Container
from solar_rag.settings import current_limits

ROUTER_NAMES = ("health", "chat", "query", "documents", "files", "openai", "playground")
ROUTER_SERVICES: dict[str, tuple[str, ...]] = {
    "health": (),
    "chat": ("chat_service",),
    "query": ("query_service",),
    "documents": ("document_intake", "document_catalog", "upload_service"),
    "files": ("document_intake",),
    "openai": ("query_service", "chat_service", "streaming_answers"),
    "playground": (),
}
"""The container's services each router calls (built at a Lambda function's init)."""
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut} for status in (400, 404, 413, 429, 502, 503, 504)
}


def services_for(routers: Iterable[str]) -> list[str]:
    return [service for name in routers for service in ROUTER_SERVICES[name]]


def _router(name: str) -> APIRouter:
    if name == "health":
        from solar_rag.api.routers.health import router
    elif name == "chat":
        from solar_rag.api.routers.chat import router
    elif name == "query":
        from solar_rag.api.routers.query import router
    elif name == "documents":
        from solar_rag.api.routers.documents import router
    elif name == "files":
        from solar_rag.api.routers.files import router
    elif name == "openai":
        from solar_rag.api.routers.openai_compat import router
    elif name == "playground":
        from solar_rag.api.routers.playground import router
    else:
        raise ValueError(f"unknown router {name!r}")
    return router


def create_app(
    container_provider: Callable[[], Container],
    *,
    routers: Iterable[str] = ROUTER_NAMES,
    max_request_bytes: int | None = None,
    cors_origins: Sequence[str] | None = None,
) -> FastAPI:
    app = FastAPI(
        title="Solar RAG API",
        version="1.0.0",
        description="Document Q&A grounded in your documents, with citations (Upstage Solar).",
        responses=ERROR_RESPONSES,
    )
    app.state.container_provider = container_provider
    install_error_handlers(app)
    for name in routers:
        app.include_router(_router(name))
    app.add_middleware(AllowedMethods, routes=lambda: app.routes)
    if max_request_bytes is None:
        max_request_bytes = current_limits().max_request_bytes
    app.add_middleware(BodySizeLimit, max_bytes=max_request_bytes)
    install_cors(app, configured_origins() if cors_origins is None else cors_origins)
    return app
