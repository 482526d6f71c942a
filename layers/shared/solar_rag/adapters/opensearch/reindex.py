"""`rag reindex` on OpenSearch (placeholder, filled in below)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from solar_rag.services.reindex import ReindexReport

if TYPE_CHECKING:
    from solar_rag.composition import Container


def reindex_opensearch(container: Container, *, rollback: bool, force: bool,
                       on_progress: Callable[[int, int, str], None] | None) -> ReindexReport:
    raise NotImplementedError
