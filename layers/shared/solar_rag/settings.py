"""Typed settings from environment variables (and ``.env`` locally)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from solar_rag.parsing.content_types import DEFAULT_DOCUMENT_PARSE_TYPES, parse_type_selection

DEFAULT_UPSTAGE_BASE_URL = "https://api.upstage.ai/v1"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

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

    # AWS wiring (Lambda)
    documents_table: str | None = None
    documents_bucket: str | None = None

    # Chunking and limits
    chunk_size_tokens: int = Field(400, ge=32, le=4000)
    chunk_overlap_tokens: int = Field(60, ge=0)
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_document_chars: int = Field(2_000_000, ge=1)
    max_object_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_query_chars: int = Field(4000, ge=16)

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
