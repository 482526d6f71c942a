from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from starlette.convertors import Convertor, register_url_convertor

from solar_rag.api.dependencies import get_container
from solar_rag.api.presenters import document_out
from solar_rag.api.schemas import (
    LIMITS,
    DocumentIn,
    DocumentListOut,
    DocumentOut,
    DocumentsIn,
    ErrorOut,
    IndexedListOut,
    IndexedOut,
    UploadIn,
    UploadOut,
)
from solar_rag.composition import Container
from solar_rag.domain import SourceDocument, stable_hash
from solar_rag.paging import MAX_CURSOR_CHARS


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


QUEUED_RESPONSE: dict[int | str, dict[str, Any]] = {
    202: {"model": IndexedListOut,
          "description": "Some documents are `queued`: the deployed service could not index them "
                         "within the request's time budget and the S3 pipeline indexes them"},
}


@router.post("/v1/documents", response_model=IndexedListOut, responses=QUEUED_RESPONSE)
def index_documents(body: DocumentsIn, container: ContainerDep, response: Response) -> IndexedListOut:
    """Index up to 100 documents; their chunks share embedding requests.

    Validation covers the whole batch before anything is written (re-sending is safe:
    unchanged documents are not re-embedded). Deployed, documents that cannot be indexed
    within the request's time budget are queued: 202, status `queued`."""
    outcomes = container.document_intake.submit([to_source(d) for d in body.documents])
    statuses = {"unchanged": "unchanged", "queued": "queued"}
    result = IndexedListOut(documents=[
        IndexedOut(id=o.id, status=statuses.get(o.status, "indexed"),
                   chunks=o.chunks)
        for o in outcomes
    ])
    if any(o.status == "queued" for o in outcomes):
        response.status_code = 202
    return result


@router.post("/agent/knowledge", response_model=IndexedListOut, responses=QUEUED_RESPONSE,
             summary="Alias of POST /v1/documents")
def agent_knowledge(body: DocumentsIn, container: ContainerDep, response: Response) -> IndexedListOut:
    return index_documents(body, container, response)


@router.post("/v1/uploads", response_model=UploadOut, responses={501: {"model": ErrorOut}})
def create_upload(body: UploadIn, container: ContainerDep) -> UploadOut:
    """A presigned upload straight to the documents bucket, for files too large for a
    request body (over 4 MiB deployed) or slow to index: POST the form `fields`, then the
    file, to `url`; the S3 pipeline indexes it under `document_id`. `metadata` is written as
    the file's sidecar first. Deployed only: the local service answers 501."""
    ticket = container.upload_service.presign(body.id, size=body.size,
                                              content_type=body.content_type,
                                              metadata=dict(body.metadata))
    upload = ticket.upload
    expires_at = datetime.now(UTC) + timedelta(seconds=upload.expires_in)
    return UploadOut(document_id=ticket.document_id, method="POST", url=upload.url,
                     fields=upload.fields, min_bytes=upload.min_bytes, max_bytes=upload.max_bytes,
                     expires_in=upload.expires_in,
                     expires_at=expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                     metadata_sidecar=ticket.sidecar_written)


@router.get("/v1/documents", response_model=DocumentListOut)
def list_documents(
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=LIMITS.max_list_limit)] = 100,
    cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
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
