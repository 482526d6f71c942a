from __future__ import annotations

from fastapi import APIRouter, Request

from solar_rag.api.dependencies import get_container
from solar_rag.api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/v1/health", response_model=HealthOut)
async def health(request: Request) -> HealthOut:
    """Configuration check only: makes no call to Upstage or the vector store.

    Answered on the event loop itself (no worker thread, no sync dependency): each hop to a
    thread needs the GIL again, which an indexing request in a worker thread holds."""
    container = get_container(request)
    return HealthOut(status="ok", provider=container.settings.provider,
                     vector_store=container.settings.vector_store)
