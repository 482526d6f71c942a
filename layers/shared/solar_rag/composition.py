"""The composition root: builds the object graph from settings, lazily, once per process.

Each property imports its adapter only when first used, so a Lambda function that never
searches never imports OpenSearch, and one that never chats never builds a chat client.
``warm`` builds, without touching the network, what a set of API routers will use: a Lambda
function calls it at init (boosted CPU, captured by SnapStart). The Lambda functions build it
``instrumented`` (ports timed for CloudWatch metrics) and with the registry's lock lease
derived from their timeout. Tests pass fakes through the keyword arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from solar_rag.errors import NotAvailableHere, NotConfigured, RagError
from solar_rag.ports import (
    AnswerGenerator,
    ChatModel,
    DocumentParser,
    DocumentRegistry,
    Embedder,
    SecretSource,
    StreamingChatModel,
    VectorStore,
)
from solar_rag.settings import Settings

if TYPE_CHECKING:
    from solar_rag.adapters.s3_source import S3ObjectSource
    from solar_rag.adapters.upstage import UpstageClient
    from solar_rag.embedding_space import EmbeddingSpace
    from solar_rag.parsing.sources import FileLoader
    from solar_rag.services.chat import ChatService
    from solar_rag.services.documents import DocumentCatalog
    from solar_rag.services.indexing import IndexingService
    from solar_rag.services.intake import DocumentIntake, UploadService
    from solar_rag.services.query import QueryService
    from solar_rag.services.s3_ingestion import S3Ingestion
    from solar_rag.services.search import SearchService
    from solar_rag.services.streaming import StreamingAnswers

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
        instrumented: bool = False,
        lease_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        self.instrumented = instrumented
        self.lease_seconds = lease_seconds
        self._secret_source = secret_source
        self._injected_chat_model = chat_model
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
        from solar_rag.adapters.redaction import CurrentSecretRedactor, RedactingChatModel
        from solar_rag.adapters.upstage import UpstageChatModel

        # Whatever a prompt injection makes the model say, the key is not in the answer.
        model: ChatModel = RedactingChatModel(UpstageChatModel(self.upstage_client),
                                              CurrentSecretRedactor(self.current_upstage_key))
        if self.instrumented:
            from solar_rag.instrumentation import TimedChatModel

            model = TimedChatModel(model)
        return model

    @cached_property
    def embedder(self) -> Embedder:
        embedder = self._embedder()
        if self.instrumented:
            from solar_rag.instrumentation import TimedEmbedder

            return TimedEmbedder(embedder)
        return embedder

    def _embedder(self) -> Embedder:
        if self.provider == "upstage":
            from solar_rag.adapters.upstage import UpstageEmbedder
            from solar_rag.resilience.rate_limit import RateLimiter

            limiter = RateLimiter(self.settings.upstage_requests_per_minute,
                                  self.settings.upstage_tokens_per_minute)
            return UpstageEmbedder(self.upstage_client, self.settings, limiter)
        from solar_rag.adapters.offline_embedder import HashingEmbedder

        return HashingEmbedder(self.settings.embedding_dimensions)

    @cached_property
    def store(self) -> VectorStore:
        store = self._store()
        if self.instrumented:
            from solar_rag.instrumentation import TimedStore

            return TimedStore(store)
        return store

    def _store(self) -> VectorStore:
        if self.settings.vector_store == "opensearch":
            from solar_rag.adapters.opensearch import build_opensearch_store
            from solar_rag.embedding_space import configured_space

            return build_opensearch_store(self.settings, space=configured_space(self.settings))
        from solar_rag.adapters.local_store import LocalVectorStore

        return LocalVectorStore(self._local_db_path, space=self.embedder.space,
                                dimensions=self.embedder.dimensions,
                                chunker=self.embedding_space.chunker,
                                candidates=self.settings.candidate_policy)

    @cached_property
    def embedding_space(self) -> EmbeddingSpace:
        """What an index built with these settings is recorded as (``rag reindex``)."""
        from solar_rag.embedding_space import EmbeddingSpace, chunker_signature

        return EmbeddingSpace(self.embedder.space, self.embedder.dimensions,
                              chunker_signature(self.settings))

    @cached_property
    def registry(self) -> DocumentRegistry:
        if self.settings.documents_table:
            from solar_rag.adapters.dynamodb_registry import DynamoDbDocumentRegistry

            if self.lease_seconds:
                return DynamoDbDocumentRegistry(self.settings.documents_table,
                                                lease_seconds=self.lease_seconds)
            return DynamoDbDocumentRegistry(self.settings.documents_table)
        from solar_rag.adapters.local_store import LocalDocumentRegistry

        return LocalDocumentRegistry(self._local_db_path)

    @property
    def _local_db_path(self) -> Path:
        """The live file: ``rag.sqlite3``, or the one ``rag reindex`` swapped in."""
        from solar_rag.adapters.local_store.generations import live_database

        return live_database(self.settings.rag_data_dir)

    @cached_property
    def answer_generator(self) -> AnswerGenerator:
        if self.provider == "upstage":
            from solar_rag.adapters.llm_answers import LlmAnswerGenerator

            return LlmAnswerGenerator(self.chat_model, max_tokens=self.settings.chat_max_tokens)
        from solar_rag.adapters.extractive_answers import ExtractiveAnswerGenerator

        generator: AnswerGenerator = ExtractiveAnswerGenerator()
        if self.instrumented:  # the LLM generator is timed through its chat model
            from solar_rag.instrumentation import TimedAnswerGenerator

            generator = TimedAnswerGenerator(generator)
        return generator

    # --- services --------------------------------------------------------------------------

    @cached_property
    def chat_service(self) -> ChatService:
        from solar_rag.services.chat import ChatService

        return ChatService(chat_model=self.chat_model, max_chars=self.settings.max_chat_chars,
                           max_messages=self.settings.max_messages)

    @cached_property
    def search_service(self) -> SearchService:
        from solar_rag.services.search import SearchService

        return SearchService(embedder=self.embedder, store=self.store,
                             max_query_chars=self.settings.max_query_chars,
                             max_top_k=self.settings.max_top_k)

    @cached_property
    def query_service(self) -> QueryService:
        from solar_rag.services.query import QueryService

        model = self.settings.upstage_chat_model if self.provider == "upstage" else "offline-extractive"
        return QueryService(search=self.search_service, generator=self.answer_generator, model=model)

    @cached_property
    def indexing_service(self) -> IndexingService:
        from solar_rag.parsing.budget import parse_limits
        from solar_rag.parsing.parsers import parse_document
        from solar_rag.services.indexing import IndexingService
        from solar_rag.text.chunking import Chunker

        size, overlap = self.settings.chunk_size_tokens, self.settings.chunk_overlap_tokens
        limits = parse_limits(self.settings)
        return IndexingService(
            parse=lambda doc: parse_document(doc, limits),
            chunker=Chunker(size_tokens=size, overlap_tokens=overlap),
            chunker_signature=self.embedding_space.chunker,
            embedder=self.embedder,
            store=self.store,
            registry=self.registry,
            max_document_chars=self.settings.max_document_chars,
        )

    @cached_property
    def document_catalog(self) -> DocumentCatalog:
        from solar_rag.services.documents import DocumentCatalog

        return DocumentCatalog(self.registry, max_list_limit=self.settings.max_list_limit)

    @cached_property
    def object_store(self) -> S3ObjectSource:
        bucket = self.settings.documents_bucket
        if not bucket:
            raise NotConfigured("DOCUMENTS_BUCKET is not set: there is no documents bucket")
        from solar_rag.adapters.s3_source import S3ObjectSource

        return S3ObjectSource(bucket)

    @cached_property
    def document_parser(self) -> DocumentParser | None:
        """Upstage Document Parse, when there is a key (``DOCUMENT_PARSE_TYPES`` routes to it)."""
        if self.provider != "upstage":
            return None
        from solar_rag.adapters.document_parse import DocumentParseClient
        from solar_rag.adapters.parse_requests import ObjectStoreRequestMemo

        # Deployed, the documents bucket remembers running parses for every container.
        memo = ObjectStoreRequestMemo(self.object_store) if self.settings.documents_bucket else None
        return DocumentParseClient(self.settings, api_key=self.current_upstage_key,
                                   on_key_rejected=self._forget_cached_secret, memo=memo)

    @cached_property
    def file_loader(self) -> FileLoader:
        """Bytes + file name to a SourceDocument: the parse limits, and the files
        ``DOCUMENT_PARSE_TYPES`` names read by Document Parse."""
        from functools import partial

        from solar_rag.parsing.budget import parse_limits
        from solar_rag.parsing.files import DocumentParseRouting, load_file

        routing = DocumentParseRouting(self.settings.document_parse_extensions,
                                       self.document_parser)
        return partial(load_file, limits=parse_limits(self.settings), document_parse=routing)

    @cached_property
    def s3_ingestion(self) -> S3Ingestion:
        from solar_rag.parsing.files import SUPPORTED_EXTENSIONS
        from solar_rag.services.s3_ingestion import S3Ingestion

        if not self.settings.documents_bucket:
            raise NotConfigured("DOCUMENTS_BUCKET is not set: the indexer cannot read S3 objects")
        return S3Ingestion(
            indexing=self.indexing_service, objects=self.object_store,
            load=self.file_loader,
            supported_extensions=SUPPORTED_EXTENSIONS,
            max_object_bytes=self.settings.max_object_bytes,
            bucket=self.settings.documents_bucket, registry=self.registry,
        )

    @cached_property
    def document_intake(self) -> DocumentIntake:
        """``POST /v1/documents``: with a documents bucket, what cannot be indexed within the
        request's deadline is queued there for the S3 pipeline; without one, all of it is
        indexed in the request."""
        from solar_rag.services.intake import DocumentIntake

        queue = self.object_store if self.settings.documents_bucket else None
        if self.provider != "upstage":
            return DocumentIntake(self.indexing_service, self.registry, queue=queue)
        return DocumentIntake(self.indexing_service, self.registry, queue=queue,
                              tokens_per_second=self.settings.upstage_tokens_per_minute / 60)

    @cached_property
    def upload_service(self) -> UploadService:
        from solar_rag.parsing.files import SUPPORTED_EXTENSIONS
        from solar_rag.services.intake import UploadService

        if not self.settings.documents_bucket:
            raise NotAvailableHere(
                "uploads need a documents bucket (DOCUMENTS_BUCKET), which only the deployed "
                "stack has: locally, index files with POST /v1/documents or `rag index`")
        return UploadService(self.object_store, supported_extensions=SUPPORTED_EXTENSIONS,
                             max_object_bytes=self.settings.max_object_bytes)

    @cached_property
    def streaming_answers(self) -> StreamingAnswers:
        """Streamed ``/v1/query`` and ``/v1/chat`` answers (Solar's own stream; offline: the
        extractive answer in one piece)."""
        from solar_rag.services.streaming import StreamingAnswers

        chat_model: StreamingChatModel | None = None
        if self._injected_chat_model is not None:  # tests: streamed in one piece
            from solar_rag.services.streaming import OnePieceStreamingChatModel

            chat_model = OnePieceStreamingChatModel(self._injected_chat_model)
        elif self.provider == "upstage":
            from solar_rag.adapters.stream_redaction import RedactingStreamingChatModel
            from solar_rag.adapters.upstage_stream import UpstageStreamingChatModel

            chat_model = RedactingStreamingChatModel(
                UpstageStreamingChatModel(self.upstage_client), self.current_upstage_key)
        return StreamingAnswers(query=self.query_service, chat_model=chat_model,
                                max_tokens=self.settings.chat_max_tokens,
                                max_chat_chars=self.settings.max_chat_chars,
                                max_messages=self.settings.max_messages)

    def use_lease_seconds(self, seconds: float) -> None:
        """Lock leases from now on (learned from the Lambda timeout after the registry may
        have been built at init)."""
        self.lease_seconds = seconds
        registry = self.__dict__.get("registry")
        if registry is not None and hasattr(registry, "lease_seconds"):
            registry.lease_seconds = seconds

    def warm(self, services: Iterable[str]) -> None:
        """Build the named services (their modules and clients), touching no network; a
        configuration error is left for the first request to answer."""
        for name in services:
            try:
                getattr(self, name)
            except RagError:
                continue
