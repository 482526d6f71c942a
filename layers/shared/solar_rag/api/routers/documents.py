from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from starlette.convertors import Convertor, register_url_convertor

from solar_rag.api.dependencies import get_container
from solar_rag.api.presenters import document_out
from solar_rag.api.schemas import (
    DocumentIn,
    DocumentListOut,
    DocumentOut,
    DocumentsIn,
    IndexedListOut,
    IndexedOut,
)
from solar_rag.composition import Container
from solar_rag.domain import SourceDocument, stable_hash


class AnyDocumentId(Convertor[str]):
    """Every id, including ids stored before the id grammar (docs: README, API): Starlette's
    ``path`` convertor (``.*``) stops at a newline, and its ``$`` matches before a final one,
    so ``GET /v1/documents/a%0A`` answered for ``a``."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("document_id", AnyDocumentId())

router = APIRouter(tags=["documents"])
ContainerDep = Annotated[Container, Depends(get_container)]


def to_source(document: DocumentIn) -> SourceDocument:
    # Without an id, the id is derived from the content: the same content maps to the same id.
    document_id = document.id or "doc-" + stable_hash(document.title, document.text)[:32]
    return SourceDocument(id=document_id, text=document.text, title=document.title,
                          content_type=document.content_type, source=document.source,
                          metadata=dict(document.metadata))


@router.post("/v1/documents", response_model=IndexedListOut)
def index_documents(body: DocumentsIn, container: ContainerDep) -> IndexedListOut:
    """Index up to 100 documents; their chunks share embedding requests.

    Validation and parsing cover the whole batch before anything is written, and an embedding
    failure writes nothing (re-sending is safe: unchanged documents are not re-embedded)."""
    outcomes = container.indexing_service.index_many([to_source(d) for d in body.documents])
    return IndexedListOut(documents=[
        IndexedOut(id=o.id, status="unchanged" if o.status == "unchanged" else "indexed",
                   chunks=o.chunks)
        for o in outcomes
    ])


@router.post("/agent/knowledge", response_model=IndexedListOut,
             summary="Alias of POST /v1/documents")
def agent_knowledge(body: DocumentsIn, container: ContainerDep) -> IndexedListOut:
    return index_documents(body, container)


@router.get("/v1/documents", response_model=DocumentListOut)
def list_documents(
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
) -> DocumentListOut:
    records, next_cursor = container.document_catalog.list(limit=limit, cursor=cursor)
    return DocumentListOut(documents=[document_out(r) for r in records], next_cursor=next_cursor)


@router.get("/v1/documents/{document_id:document_id}", response_model=DocumentOut)
def get_document(document_id: str, container: ContainerDep) -> DocumentOut:
    return document_out(container.document_catalog.get(document_id))


@router.delete("/v1/documents/{document_id:document_id}", status_code=204)
def delete_document(document_id: str, container: ContainerDep) -> Response:
    container.indexing_service.delete(document_id)
    return Response(status_code=204)
