"""HTTP request and response bodies (the public API v1)."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from solar_rag.document_ids import (
    ID_PATTERN,
    MAX_DOCUMENT_ID_CHARS,
    NOT_BLANK_PATTERN,
    check_document_id,
)
from solar_rag.domain import SearchMode
from solar_rag.settings import current_limits

LIMITS = current_limits()
"""The configured limits (settings ``MAX_*``): the bounds below, and so the OpenAPI document,
follow them. The bounds written as numbers here are wire-format sanity bounds no setting
or service shares."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
METADATA_KEY_PATTERN = r"^[A-Za-z0-9_.:-]+$"
MAX_METADATA_KEY_CHARS = 128


def _integral_float_to_int(value: object) -> object:
    # JSON Schema counts 3.0 as an integer; strict validation would refuse it.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _KeysByPattern:
    """Describes a dict with constrained keys as ``propertyNames`` + ``additionalProperties``.

    Pydantic renders ``dict[constr(pattern=...), V]`` as ``patternProperties``, which in JSON
    Schema lets any *other* key through with any value: the published schema would promise
    requests the API refuses.
    """

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        patterns: dict[str, Any] | None = target.pop("patternProperties", None)
        if patterns and len(patterns) == 1:
            ((pattern, value),) = patterns.items()
            target["propertyNames"] = {"type": "string", "pattern": pattern, "minLength": 1,
                                       "maxLength": MAX_METADATA_KEY_CHARS}
            target["additionalProperties"] = value
        return schema


# Scalars are strict: JSON's types are kept as sent (no "5" -> 5, true -> 1, or a long digit
# string turned into an int by the union), numbers are finite and integers fit a 64-bit long
# (OpenSearch's ``long``).
IntegralFloat = BeforeValidator(_integral_float_to_int)
TopK = Annotated[int, Field(strict=True, ge=1, le=LIMITS.max_top_k), IntegralFloat]
MaxTokens = Annotated[int, Field(strict=True, ge=1, le=LIMITS.max_completion_tokens), IntegralFloat]
StrictFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
MetadataValue = (Annotated[str, StringConstraints(max_length=LIMITS.max_metadata_value_chars,
                                                  strict=True)]
                 | Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
                 | StrictFloat
                 | Annotated[bool, Field(strict=True)])
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_METADATA_KEY_CHARS,
                                               pattern=METADATA_KEY_PATTERN)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=LIMITS.max_metadata_keys),
                     _KeysByPattern()]
FilterValue = MetadataValue | Annotated[list[MetadataValue], Field(min_length=1, max_length=100)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


# The patterns are published for clients (OpenAPI) and enforced by the validators, which
# give a readable reason; tests/unit/test_document_ids.py checks that both agree.
NotBlank = AfterValidator(_not_blank)
NOT_BLANK_SCHEMA: dict[str, Any] = {"pattern": NOT_BLANK_PATTERN}
DocumentId = Annotated[str, Field(min_length=1, max_length=MAX_DOCUMENT_ID_CHARS,
                                  json_schema_extra={"pattern": ID_PATTERN,
                                                     "allOf": [NOT_BLANK_SCHEMA]}),
                       AfterValidator(partial(check_document_id, error=ValueError))]
STREAM_DESCRIPTION = ("Answer with Server-Sent Events (`text/event-stream`) as the answer is "
                      "written, instead of one JSON body")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=LIMITS.max_message_chars)]


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class HealthOut(BaseModel):
    status: Literal["ok"]
    provider: Literal["upstage", "offline"]
    vector_store: Literal["opensearch", "local"]


class ChatIn(Strict):
    messages: Annotated[list[Message], Field(min_length=1, max_length=LIMITS.max_messages)]
    temperature: Annotated[StrictFloat, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: MaxTokens | None = None
    stream: Annotated[bool, Field(strict=True, description=STREAM_DESCRIPTION)] = False


class ChatOut(BaseModel):
    answer: str
    model: str
    usage: UsageOut


EMBEDDING_INPUT_CHARS = LIMITS.max_query_chars * 8
"""Passages may be embedded too (``kind: passage``), so an input may be longer than a query."""


class EmbeddingsIn(Strict):
    input: (Annotated[str, Field(min_length=1, max_length=EMBEDDING_INPUT_CHARS)]
            | Annotated[list[Annotated[str, Field(min_length=1, max_length=EMBEDDING_INPUT_CHARS)]],
                        Field(min_length=1, max_length=256)])
    kind: Literal["query", "passage"] = "query"


class EmbeddingOut(BaseModel):
    index: int
    embedding: list[float]


class EmbeddingsOut(BaseModel):
    model: str
    dimensions: int
    data: list[EmbeddingOut]


class DocumentIn(Strict):
    id: DocumentId | None = None
    title: Annotated[str, Field(max_length=1000)] | None = None
    text: Annotated[str, Field(min_length=1, max_length=LIMITS.max_document_chars,
                               json_schema_extra=NOT_BLANK_SCHEMA), NotBlank]
    content_type: Literal["text/plain", "text/markdown", "text/html"] = "text/plain"
    source: Annotated[str, Field(max_length=2048)] | None = None
    metadata: Metadata = Field(default_factory=dict)


class DocumentsIn(Strict):
    documents: Annotated[list[DocumentIn],
                         Field(min_length=1, max_length=LIMITS.max_documents_per_request)]


class IndexedOut(BaseModel):
    id: str
    status: Literal["indexed", "unchanged", "queued"] = Field(
        description="`queued`: not indexed within the request's time budget (deployed stack "
                    "only); the S3 pipeline indexes it, `GET /v1/documents/{id}` shows the status")
    chunks: int


class IndexedListOut(BaseModel):
    documents: list[IndexedOut]


class DocumentOut(BaseModel):
    id: str
    title: str | None
    source: str | None
    content_type: str
    status: Literal["queued", "indexing", "indexed", "failed", "deleted"]
    chunks: int
    content_hash: str | None
    metadata: dict[str, str | int | float | bool]
    indexed_at: str | None
    error: str | None


class DocumentListOut(BaseModel):
    documents: list[DocumentOut]
    next_cursor: str | None


class SearchIn(Strict):
    query: Annotated[str, Field(min_length=1, max_length=LIMITS.max_query_chars,
                                json_schema_extra=NOT_BLANK_SCHEMA), NotBlank]
    top_k: TopK = 5
    mode: SearchMode = SearchMode.HYBRID
    filters: Annotated[dict[MetadataKey, FilterValue], Field(max_length=32),
                       _KeysByPattern()] = Field(default_factory=dict)


class SearchResultOut(BaseModel):
    document_id: str
    chunk_id: str
    text: str
    score: float
    title: str | None
    source: str | None
    metadata: dict[str, str | int | float | bool]
    page: int | None = None
    page_end: int | None = None
    section: str | None = None


class SearchOut(BaseModel):
    results: list[SearchResultOut]


class QueryIn(SearchIn):
    history: Annotated[list[Message], Field(max_length=LIMITS.max_history_messages)] = Field(
        default_factory=list)
    temperature: Annotated[StrictFloat, Field(ge=0.0, le=2.0)] | None = None
    stream: Annotated[bool, Field(strict=True, description=STREAM_DESCRIPTION)] = False


class CitationOut(BaseModel):
    index: int
    document_id: str
    chunk_id: str
    title: str | None
    source: str | None
    text: str
    score: float
    page: int | None = Field(None, description="The page the cited text starts on (documents "
                                               "with pages: PDFs, Document Parse)")
    page_end: int | None = Field(None, description="The page it ends on, when another")
    section: str | None = Field(None, description="The heading path of the cited text")
    location: str | None = Field(None, description='For people: "p. 12", "pp. 12-13", or the '
                                                   "section path of a document without pages")


class QueryOut(BaseModel):
    answer: str
    citations: list[CitationOut]
    model: str
    usage: UsageOut


class UploadIn(Strict):
    id: Annotated[DocumentId, Field(description=(
        "The document id, which is also the object key; its extension chooses the parser "
        "(.txt .md .html .json .pdf .docx)"))]
    size: Annotated[int, Field(ge=1, description="The file's size in bytes, if known")] | None = None
    content_type: Annotated[str, Field(max_length=255)] | None = None
    metadata: Metadata = Field(default_factory=dict)


class UploadOut(BaseModel):
    document_id: str
    method: Literal["POST"]
    url: str
    fields: dict[str, str] = Field(description=(
        "Form fields to send, in this order, before the file (multipart/form-data, the file "
        "in a field named `file`)"))
    min_bytes: int
    max_bytes: int
    expires_in: int
    expires_at: str
    metadata_sidecar: bool


class ErrorOut(BaseModel):
    detail: str
