"""Typed settings from environment variables (and ``.env`` locally)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from solar_rag.errors import NotConfigured
from solar_rag.parsing.content_types import DEFAULT_DOCUMENT_PARSE_TYPES, parse_type_selection
from solar_rag.retrieval.fusion import CandidatePolicy

DEFAULT_UPSTAGE_BASE_URL = "https://api.upstage.ai/v1"
_CONFIG = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")


class Limits(BaseSettings):
    """Every input limit, in one place: the API schemas (so the OpenAPI document), the services
    and the S3 edge read them here. An input over a limit is refused (413, 422 or 400), never
    cut; a limit outside its bounds fails at start-up."""

    model_config = _CONFIG

    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """HTTP request body; in AWS Lambda at most 4 MiB (lambda_edge.runtime), 4 MiB when unset."""
    max_document_chars: int = Field(2_000_000, ge=1)
    max_object_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_documents_per_request: int = Field(100, ge=1, le=1000)
    max_query_chars: int = Field(4000, ge=16, le=100_000)
    """A question or search query; an input of ``POST /v1/embeddings`` may be 8 times longer."""
    max_top_k: int = Field(50, ge=1, le=1000)
    max_message_chars: int = Field(100_000, ge=16)
    """One chat message (or one message of a query's history)."""
    max_chat_chars: int = Field(400_000, ge=16)
    """All messages of one conversation together."""
    max_messages: int = Field(100, ge=1, le=1000)
    max_history_messages: int = Field(50, ge=0, le=1000)
    """Messages of a query's ``history`` (the prompt keeps the latest; services/prompt.py)."""
    max_completion_tokens: int = Field(32_768, ge=16, le=1_000_000)
    """The largest ``max_tokens`` a request may ask for."""
    max_list_limit: int = Field(1000, ge=1, le=10_000)
    """``GET /v1/documents?limit=``."""
    max_metadata_keys: int = Field(64, ge=1, le=100)
    """Per document (also a sidecar's attributes); the registry keeps metadata in one
    DynamoDB item (400 KB)."""
    max_metadata_value_chars: int = Field(2048, ge=1, le=2048)
    """Per string value; OpenSearch indexes a ``["key", value]`` term up to 4,096 characters."""


@lru_cache(maxsize=1)
def current_limits() -> Limits:
    """The process's limits, read once from the environment, for what is built at import time
    (the API schemas). With an invalid limit the defaults: the container then refuses every
    request, naming the variable (503), so no request is ever judged by them."""
    try:
        return Limits()
    except ValidationError:
        return Limits.model_construct()


_IN_ORDER = (
    ("hybrid_min_candidates", "hybrid_max_candidates"),
    ("max_top_k", "hybrid_max_candidates"),  # the pool of a search holds its results
    ("chat_max_tokens", "max_completion_tokens"),  # the default a request may ask for
    ("max_message_chars", "max_chat_chars"),
)
"""Settings ``(a, b)`` with ``a <= b``, checked at start-up."""


class Settings(Limits):
    model_config = _CONFIG

    # Upstage
    upstage_api_key: SecretStr | None = None
    upstage_secret_id: str | None = None
    upstage_base_url: str = DEFAULT_UPSTAGE_BASE_URL
    upstage_chat_model: str = "solar-pro3"
    upstage_embedding_query_model: str = "solar-embedding-2-query"
    upstage_embedding_passage_model: str = "solar-embedding-2-passage"
    embedding_dimensions: int = Field(1024, ge=8, le=16000)
    upstage_timeout_seconds: float = Field(25.0, gt=0)
    upstage_max_retries: int = Field(4, ge=0, le=10)
    upstage_requests_per_minute: int = Field(100, ge=1)
    upstage_tokens_per_minute: int = Field(300_000, ge=1)
    embedding_batch_size: int = Field(64, ge=1, le=100)
    embedding_batch_tokens: int = Field(32_000, ge=512)
    chat_max_tokens: int = Field(1024, ge=16)

    # Vector store
    vector_store: Literal["local", "opensearch"] = "local"
    rag_data_dir: Path = Path(".rag")
    opensearch_url: str | None = None
    opensearch_username: str | None = None
    opensearch_password: SecretStr | None = None
    opensearch_endpoint: str | None = None
    opensearch_target: Literal["domain", "serverless", "serverless-classic"] = "domain"
    opensearch_index: str = "rag-chunks"
    opensearch_timeout_seconds: float = Field(10.0, gt=0)
    opensearch_max_retries: int = Field(4, ge=0, le=10)
    # k-NN tuning (docs/opensearch.md "Vector field"): Faiss HNSW ef_search, written into the
    # mapping (method.parameters) and, on Serverless NextGen, sent with every k-NN query.
    opensearch_ef_search: int = Field(100, ge=2, le=10_000)
    # Vector compression; NextGen defaults to 32x (binary quantization) when it is not stated.
    opensearch_compression_level: Literal["1x", "2x", "4x", "8x", "16x", "32x"] = "1x"
    aws_region: str | None = Field(None, alias="AWS_REGION")
    # Hybrid search: how many hits each side (BM25, k-NN) contributes before rank fusion, in
    # both stores (retrieval/fusion.py CandidatePolicy): top_k times this, within min..max.
    hybrid_candidates_per_result: int = Field(4, ge=1, le=100)
    hybrid_min_candidates: int = Field(20, ge=1, le=10_000)
    hybrid_max_candidates: int = Field(100, ge=1, le=10_000)

    # AWS wiring (Lambda)
    documents_table: str | None = None
    documents_bucket: str | None = None

    # Chunking (the input limits are in Limits, above)
    chunk_size_tokens: int = Field(400, ge=32, le=4000)
    chunk_overlap_tokens: int = Field(60, ge=0)

    # Browsers: comma-separated origins answered with CORS headers (the CDK stack sets it
    # from its `cors_origins` context); empty = no CORS.
    cors_allowed_origins: str = ""
    # Parse budgets, per document (docs/reliability.md)
    parse_time_budget_seconds: float = Field(30.0, gt=0, le=900)
    parse_max_decompressed_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    parse_max_depth: int = Field(100, ge=8, le=500)
    parse_max_elements: int = Field(500_000, ge=1000)

    # Upstage Document Parse (README "Document Parse"; docs/ingestion.md)
    document_parse_types: str = DEFAULT_DOCUMENT_PARSE_TYPES
    document_parse_model: str = "document-parse"
    document_parse_mode: Literal["standard", "enhanced", "auto"] = "standard"
    document_parse_ocr: Literal["auto", "force"] = "auto"
    document_parse_output_format: Literal["markdown", "html"] = "markdown"
    document_parse_base_url: str | None = None
    # Requests per second of this process (a deployed indexer container gets its share)
    document_parse_sync_rps: float = Field(3.0, gt=0, le=100)
    document_parse_async_rps: float = Field(6.0, gt=0, le=100)
    document_parse_sync_max_pages: int = Field(10, ge=0, le=100)
    document_parse_timeout_seconds: float = Field(60.0, gt=0)
    document_parse_max_retries: int = Field(2, ge=0, le=10)
    document_parse_poll_seconds: float = Field(2.0, gt=0, le=60)
    document_parse_max_wait_seconds: float = Field(600.0, gt=0)
    document_parse_reserve_seconds: float = Field(60.0, ge=0)

    @field_validator("document_parse_types")
    @classmethod
    def _known_parse_types(cls, value: str) -> str:
        parse_type_selection(value)
        return value

    @property
    def document_parse_extensions(self) -> frozenset[str]:
        return parse_type_selection(self.document_parse_types)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_size_tokens:
            raise ValueError("CHUNK_OVERLAP_TOKENS must be smaller than CHUNK_SIZE_TOKENS")
        return self

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Settings:
        for lower, upper in _IN_ORDER:
            if getattr(self, lower) > getattr(self, upper):
                raise ValueError(f"{lower.upper()} must not exceed {upper.upper()}")
        return self

    @property
    def candidate_policy(self) -> CandidatePolicy:
        return CandidatePolicy(self.hybrid_candidates_per_result, self.hybrid_min_candidates,
                               self.hybrid_max_candidates)

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_allowed_origins.split(",") if o.strip())

    @property
    def uses_upstage(self) -> bool:
        """Upstage when a key is available (locally) or a secret is configured (Lambda)."""
        key = self.upstage_api_key.get_secret_value().strip() if self.upstage_api_key else ""
        return bool(key) or bool(self.upstage_secret_id)

    @property
    def provider(self) -> Literal["upstage", "offline"]:
        return "upstage" if self.uses_upstage else "offline"


def load_settings() -> Settings:
    """Settings from the environment; an invalid value is ``NotConfigured`` naming the
    variable and the reason, never the value (it could be a secret: pydantic's own message
    quotes the input, for a check across fields every variable set)."""
    try:
        return Settings()
    except ValidationError as error:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: {e['msg']}"
                           for e in error.errors(include_input=False))
        raise NotConfigured(f"invalid configuration: {fields}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (the CLI), loaded once by :func:`load_settings`."""
    return load_settings()
