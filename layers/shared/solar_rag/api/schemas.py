"""HTTP request and response bodies (the public API v1)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from solar_rag.domain import SearchMode

MAX_TEXT_CHARS = 2_000_000
MAX_QUERY_CHARS = 4000
MAX_MESSAGE_CHARS = 100_000
MAX_DOCUMENTS_PER_REQUEST = 100

MetadataValue = Annotated[str, StringConstraints(max_length=2048)] | int | float | bool
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=128,
                                               pattern=r"^[A-Za-z0-9_.:-]+$")]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=64)]
FilterValue = MetadataValue | Annotated[list[MetadataValue], Field(min_length=1, max_length=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_MESSAGE_CHARS)]


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class HealthOut(BaseModel):
    status: Literal["ok"]
    provider: Literal["upstage", "offline"]
    vector_store: Literal["opensearch", "local"]


class ChatIn(Strict):
    messages: Annotated[list[Message], Field(min_length=1, max_length=100)]
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=32_768)] | None = None


class ChatOut(BaseModel):
    answer: str
    model: str
    usage: UsageOut


class EmbeddingsIn(Strict):
    input: (Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS * 8)]
            | Annotated[list[Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS * 8)]],
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
    id: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    title: Annotated[str, Field(max_length=1000)] | None = None
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
    content_type: Literal["text/plain", "text/markdown", "text/html"] = "text/plain"
    source: Annotated[str, Field(max_length=2048)] | None = None
    metadata: Metadata = Field(default_factory=dict)


class DocumentsIn(Strict):
    documents: Annotated[list[DocumentIn], Field(min_length=1, max_length=MAX_DOCUMENTS_PER_REQUEST)]


class IndexedOut(BaseModel):
    id: str
    status: Literal["indexed", "unchanged"]
    chunks: int


class IndexedListOut(BaseModel):
    documents: list[IndexedOut]


class DocumentOut(BaseModel):
    id: str
    title: str | None
    source: str | None
    content_type: str
    status: Literal["indexing", "indexed", "failed", "deleted"]
    chunks: int
    content_hash: str | None
    metadata: dict[str, str | int | float | bool]
    indexed_at: str | None
    error: str | None


class DocumentListOut(BaseModel):
    documents: list[DocumentOut]
    next_cursor: str | None


class SearchIn(Strict):
    query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
    top_k: Annotated[int, Field(ge=1, le=50)] = 5
    mode: SearchMode = SearchMode.HYBRID
    filters: Annotated[dict[MetadataKey, FilterValue], Field(max_length=32)] = Field(
        default_factory=dict)


class SearchResultOut(BaseModel):
    document_id: str
    chunk_id: str
    text: str
    score: float
    title: str | None
    source: str | None
    metadata: dict[str, str | int | float | bool]


class SearchOut(BaseModel):
    results: list[SearchResultOut]


class QueryIn(SearchIn):
    history: Annotated[list[Message], Field(max_length=50)] = Field(default_factory=list)
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] | None = None


class CitationOut(BaseModel):
    index: int
    document_id: str
    chunk_id: str
    title: str | None
    source: str | None
    text: str
    score: float


class QueryOut(BaseModel):
    answer: str
    citations: list[CitationOut]
    model: str
    usage: UsageOut


class ErrorOut(BaseModel):
    detail: str
