"""The composition root: builds the object graph from settings, lazily, once per process.

Each property imports its adapter only when first used, so a Lambda function that never
searches never imports OpenSearch, and one that never chats never builds a chat client.
Tests pass fakes through the keyword arguments.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from solar_rag.errors import NotConfigured
from solar_rag.ports import (
    AnswerGenerator,
    ChatModel,
    DocumentRegistry,
    Embedder,
    SecretSource,
    VectorStore,
)
from solar_rag.settings import Settings

if TYPE_CHECKING:
    from solar_rag.adapters.upstage import UpstageClient
    from solar_rag.services.chat import ChatService
    from solar_rag.services.documents import DocumentCatalog
    from solar_rag.services.indexing import IndexingService
    from solar_rag.services.query import QueryService
    from solar_rag.services.search import SearchService

LOCAL_DB_FILE = "rag.sqlite3"


class Container:
    def __init__(
        self,
        settings: Settings,
        *,
        secret_source: SecretSource | None = None,
        chat_model: ChatModel | None = None,
        embedder: Embedder | None = None,
        store: VectorStore | None = None,
        registry: DocumentRegistry | None = None,
    ) -> None:
        self.settings = settings
        self._secret_source = secret_source
        if chat_model is not None:
            self.__dict__["chat_model"] = chat_model
        if embedder is not None:
            self.__dict__["embedder"] = embedder
        if store is not None:
            self.__dict__["store"] = store
        if registry is not None:
            self.__dict__["registry"] = registry

    # --- configuration -------------------------------------------------------------------

    @property
    def provider(self) -> str:
        return self.settings.provider

    @property
    def vector_store_kind(self) -> str:
        return self.settings.vector_store

    @cached_property
    def secret_source(self) -> SecretSource:
        return self._secret_source or self._default_secret_source()

    def current_upstage_key(self) -> str:
        """The key now: read on every use (the secret source caches it for a few minutes), so
        a key stored after deploy, or rotated, is used without recycling the container."""
        settings = self.settings
        if settings.upstage_api_key and settings.upstage_api_key.get_secret_value().strip():
            return settings.upstage_api_key.get_secret_value().strip()
        if settings.upstage_secret_id:
            value = self.secret_source.get(settings.upstage_secret_id).strip()
            if not value:
                raise NotConfigured(
                    f"the Upstage API key secret {settings.upstage_secret_id!r} is empty: set it with "
                    "`aws secretsmanager put-secret-value --secret-id "
                    f"{settings.upstage_secret_id} --secret-string <your key>`"
                )
            return value
        raise NotConfigured("no Upstage API key is configured (set UPSTAGE_API_KEY)")

    def _forget_cached_secret(self) -> None:
        if self.settings.upstage_secret_id and hasattr(self.secret_source, "clear_cache"):
            self.secret_source.clear_cache()

    def _default_secret_source(self) -> SecretSource:
        from solar_rag.adapters.log_hygiene import install_secret_payload_filter
        from solar_rag.adapters.secrets import SecretsManagerSource

        install_secret_payload_filter()  # botocore would log the key at DEBUG
        return SecretsManagerSource()

    # --- adapters --------------------------------------------------------------------------

    @cached_property
    def upstage_client(self) -> UpstageClient:
        from solar_rag.adapters.upstage import UpstageClient

        return UpstageClient(self.settings, api_key=self.current_upstage_key,
                             on_key_rejected=self._forget_cached_secret)

    @cached_property
    def chat_model(self) -> ChatModel:
        if self.provider != "upstage":
            raise NotConfigured(
                "chat needs a language model: set UPSTAGE_API_KEY (the offline provider only "
                "answers questions about indexed documents, by quoting them)"
            )
        from solar_rag.adapters.upstage import UpstageChatModel
        from solar_rag.services.redaction import CurrentSecretRedactor, RedactingChatModel

        # Whatever a prompt injection makes the model say, the key is not in the answer.
        return RedactingChatModel(UpstageChatModel(self.upstage_client),
                                  CurrentSecretRedactor(self.current_upstage_key))

    @cached_property
    def embedder(self) -> Embedder:
        if self.provider == "upstage":
            from solar_rag.adapters.rate_limit import RateLimiter
            from solar_rag.adapters.upstage import UpstageEmbedder

            limiter = RateLimiter(self.settings.upstage_requests_per_minute,
                                  self.settings.upstage_tokens_per_minute)
            return UpstageEmbedder(self.upstage_client, self.settings, limiter)
        from solar_rag.adapters.offline_embedder import HashingEmbedder

        return HashingEmbedder(self.settings.embedding_dimensions)

    @cached_property
    def store(self) -> VectorStore:
        if self.settings.vector_store == "opensearch":
            from solar_rag.adapters.opensearch import build_opensearch_store

            return build_opensearch_store(self.settings)
        from solar_rag.adapters.local_store import LocalVectorStore

        return LocalVectorStore(self._local_db_path, space=self.embedder.space,
                                dimensions=self.embedder.dimensions)

    @cached_property
    def registry(self) -> DocumentRegistry:
        if self.settings.documents_table:
            from solar_rag.adapters.dynamodb_registry import DynamoDbDocumentRegistry

            return DynamoDbDocumentRegistry(self.settings.documents_table)
        from solar_rag.adapters.local_store import LocalDocumentRegistry

        return LocalDocumentRegistry(self._local_db_path)

    @property
    def _local_db_path(self) -> Path:
        return self.settings.rag_data_dir / LOCAL_DB_FILE

    @cached_property
    def answer_generator(self) -> AnswerGenerator:
        if self.provider == "upstage":
            from solar_rag.services.generation import LlmAnswerGenerator

            return LlmAnswerGenerator(self.chat_model, max_tokens=self.settings.chat_max_tokens)
        from solar_rag.services.extractive import ExtractiveAnswerGenerator

        return ExtractiveAnswerGenerator()

    # --- services --------------------------------------------------------------------------

    @cached_property
    def chat_service(self) -> ChatService:
        from solar_rag.api.schemas import MAX_MESSAGE_CHARS
        from solar_rag.services.chat import ChatService

        return ChatService(chat_model=self.chat_model, max_chars=MAX_MESSAGE_CHARS * 4)

    @cached_property
    def search_service(self) -> SearchService:
        from solar_rag.services.search import SearchService

        return SearchService(embedder=self.embedder, store=self.store,
                             max_query_chars=self.settings.max_query_chars)

    @cached_property
    def query_service(self) -> QueryService:
        from solar_rag.services.query import QueryService

        model = self.settings.upstage_chat_model if self.provider == "upstage" else "offline-extractive"
        return QueryService(search=self.search_service, generator=self.answer_generator, model=model)

    @cached_property
    def indexing_service(self) -> IndexingService:
        from solar_rag.services.indexing import IndexingService
        from solar_rag.text.budget import parse_limits
        from solar_rag.text.chunking import Chunker
        from solar_rag.text.parsers import parse_document

        size, overlap = self.settings.chunk_size_tokens, self.settings.chunk_overlap_tokens
        limits = parse_limits(self.settings)
        return IndexingService(
            parse=lambda doc: parse_document(doc, limits),
            chunker=Chunker(size_tokens=size, overlap_tokens=overlap),
            chunker_signature=f"chunker-v1:{size}:{overlap}",
            embedder=self.embedder,
            store=self.store,
            registry=self.registry,
            max_document_chars=self.settings.max_document_chars,
        )

    @cached_property
    def document_catalog(self) -> DocumentCatalog:
        from solar_rag.services.documents import DocumentCatalog

        return DocumentCatalog(self.registry)
