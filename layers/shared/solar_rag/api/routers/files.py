"""``POST /v1/files``: index one file sent in a JSON body (base64), parsed by its extension
like ``rag index`` does (.txt .md .html .json .pdf .docx; images and office files through
Upstage Document Parse, see ``DOCUMENT_PARSE_TYPES``). For browsers and clients that have
a file, not text; within the request body limit (4 MiB deployed, about 3 MB of file).
Larger files go through ``POST /v1/uploads`` (deployed)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import Field

from solar_rag.api.dependencies import get_container
from solar_rag.api.schemas import IndexedListOut, IndexedOut, Metadata, Strict
from solar_rag.composition import Container
from solar_rag.errors import InvalidInput

router = APIRouter(tags=["documents"])


class FileIn(Strict):
    filename: Annotated[str, Field(min_length=1, max_length=1024, description=(
        "The file's name; its extension chooses the parser"))]
    data_base64: Annotated[str, Field(min_length=4, pattern=r"^[A-Za-z0-9+/]+={0,2}$",
                                      description="The file's bytes, base64")]
    id: Annotated[str, Field(min_length=1, max_length=1024, description=(
        "The document id (default: the file name)"))] | None = None
    metadata: Metadata = Field(default_factory=dict)


@router.post("/v1/files", response_model=IndexedListOut, status_code=200)
def index_file(body: FileIn, container: Annotated[Container, Depends(get_container)],
               response: Response) -> IndexedListOut:
    try:
        data = base64.b64decode(body.data_base64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("data_base64 is not valid base64") from None
    if not data:
        raise InvalidInput("the file is empty")
    document = container.file_loader(data, body.filename, document_id=body.id or body.filename,
                                     metadata=dict(body.metadata), source=body.filename)
    outcomes = container.document_intake.submit([document])
    statuses = {"unchanged": "unchanged", "queued": "queued"}
    if any(o.status == "queued" for o in outcomes):
        response.status_code = 202
    return IndexedListOut(documents=[
        IndexedOut(id=o.id, status=statuses.get(o.status, "indexed"), chunks=o.chunks)
        for o in outcomes])
