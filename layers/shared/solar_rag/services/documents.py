"""Read side of the registry: list and show documents."""

from __future__ import annotations

from solar_rag.domain import DocumentRecord, DocumentStatus
from solar_rag.errors import DocumentNotFound, InvalidInput
from solar_rag.ports import DocumentRegistry

MAX_PAGE = 1000


class DocumentCatalog:
    def __init__(self, registry: DocumentRegistry) -> None:
        self._registry = registry

    def get(self, document_id: str) -> DocumentRecord:
        record = self._registry.get(document_id)
        if record is None or record.status == DocumentStatus.DELETED:
            raise DocumentNotFound(f"document {document_id!r} not found")
        return record

    def list(self, *, limit: int = 100, cursor: str | None = None
             ) -> tuple[list[DocumentRecord], str | None]:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        return self._registry.list(limit=limit, cursor=cursor)
