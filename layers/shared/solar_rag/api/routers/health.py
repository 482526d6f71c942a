from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from solar_rag.api.dependencies import get_container
from solar_rag.api.schemas import HealthOut
from solar_rag.composition import Container

router = APIRouter(tags=["health"])


@router.get("/v1/health", response_model=HealthOut)
def health(container: Annotated[Container, Depends(get_container)]) -> HealthOut:
    """Configuration check only: makes no call to Upstage or the vector store."""
    return HealthOut(status="ok", provider=container.settings.provider,
                     vector_store=container.settings.vector_store)
