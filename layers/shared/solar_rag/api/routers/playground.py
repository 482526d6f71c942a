"""The playground: a static page (HTML, JS, CSS shipped in the package, no CDN, no build
step) that calls the API from the browser with the key the user types."""

from __future__ import annotations

import html
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response

from solar_rag.text.markers import MARKER_PATTERN

router = APIRouter(tags=["playground"], include_in_schema=False)

ASSETS = {"index.html": "text/html; charset=utf-8",
          "playground.js": "text/javascript; charset=utf-8",
          "playground.css": "text/css; charset=utf-8"}
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
                                       "frame-ancestors 'none'"}


_MARKER_SLOT = b"{{citation_marker}}"
"""Stands in ``index.html`` for ``text.markers.MARKER_PATTERN`` (a ``<meta>`` the script reads:
the page's CSP allows no inline script), so the page and the citation post-check share one
definition of a marker."""


def _asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(status_code=404, detail="Not Found")
    body = resources.files("solar_rag.api").joinpath("static", name).read_bytes()
    if name == "index.html":
        body = body.replace(_MARKER_SLOT, html.escape(MARKER_PATTERN).encode())
    return Response(body, media_type=ASSETS[name], headers=_HEADERS)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("playground", status_code=307)


@router.get("/playground")
def playground() -> Response:
    """The page; it loads ``playground/<asset>`` (relative: works under a stage prefix)."""
    return _asset("index.html")


@router.get("/playground/{name}")
def playground_asset(name: str) -> Response:
    return _asset(name)
