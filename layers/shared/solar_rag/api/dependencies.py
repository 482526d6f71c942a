from __future__ import annotations

from fastapi import Request

from solar_rag.composition import Container


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container_provider()
    return container
