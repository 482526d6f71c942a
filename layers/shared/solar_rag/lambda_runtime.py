"""Per-container Lambda bootstrapping shared by the three functions.

- Settings and the ``Container`` are built on first use, once per container, and reused by
  every invocation (clients included). Nothing here touches the network at import.
- The container's ports are wrapped with timing/metric decorators (services stay pure).
- HTTP: the shared FastAPI routers behind Mangum, for API Gateway REST (v1 proxy) events.
- SQS: a Powertools ``BatchProcessor`` with partial batch responses over ``S3Ingestion``.

Tests call ``reset()`` between cases.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from solar_rag import observability
from solar_rag.composition import Container
from solar_rag.domain import (
    Answer,
    ChatCompletion,
    ChatMessage,
    DocumentWrite,
    EmbeddedChunk,
    EmbeddingKind,
    SearchHit,
    SearchQuery,
    WriteResult,
)
from solar_rag.errors import NotConfigured
from solar_rag.ports import AnswerGenerator, ChatModel, DocumentRegistry, Embedder, VectorStore
from solar_rag.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from solar_rag.services.indexing import IndexOutcome
    from solar_rag.services.s3_ingestion import S3Ingestion

Event = dict[str, Any]
Handler = Callable[[Event, Any], dict[str, Any]]

logger = logging.getLogger("solar_rag.lambda")

LEASE_MARGIN_SECONDS = 60
MIN_LEASE_SECONDS = 120


# --- port decorators: latency per stage, tokens, chunks ------------------------------------------

class TimedEmbedder:
    def __init__(self, inner: Embedder) -> None:
        self.inner = inner

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def space(self) -> str:
        return self.inner.space

    def model_for(self, kind: EmbeddingKind) -> str:
        return self.inner.model_for(kind)

    def embed(self, texts: Sequence[str], kind: EmbeddingKind) -> list[list[float]]:
        with observability.stage("embed"):
            return self.inner.embed(texts, kind)


class TimedStore:
    def __init__(self, inner: VectorStore) -> None:
        self.inner = inner

    @property
    def kind(self) -> str:
        return self.inner.kind

    def upsert_document(self, document_id: str, version: str, chunks: Sequence[EmbeddedChunk], *,
                        previous_chunk_ids: Sequence[str] = ()) -> list[str]:
        with observability.stage("upsert"):
            stored = self.inner.upsert_document(document_id, version, chunks,
                                                previous_chunk_ids=previous_chunk_ids)
        observability.record_chunks_indexed(len(stored))
        return stored

    def upsert_documents(self, writes: Sequence[DocumentWrite]) -> list[WriteResult]:
        with observability.stage("upsert"):
            results = self.inner.upsert_documents(writes)
        observability.record_chunks_indexed(sum(len(r.stored_ids) for r in results))
        return results

    def delete_document(self, document_id: str, *, chunk_ids: Sequence[str] = ()) -> int:
        return self.inner.delete_document(document_id, chunk_ids=chunk_ids)

    def search(self, query: SearchQuery) -> list[SearchHit]:
        with observability.stage("retrieve"):
            return self.inner.search(query)


class TimedChatModel:
    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner

    @property
    def model(self) -> str:
        return self.inner.model

    def complete(self, messages: Sequence[ChatMessage], *, temperature: float | None = None,
                 max_tokens: int | None = None) -> ChatCompletion:
        with observability.stage("generate"):
            completion = self.inner.complete(messages, temperature=temperature, max_tokens=max_tokens)
        observability.record_tokens(completion.usage)
        return completion


class TimedAnswerGenerator:
    """For the offline generator only: the LLM generator is timed through its chat model."""

    def __init__(self, inner: AnswerGenerator) -> None:
        self.inner = inner

    def generate(self, question: str, hits: Sequence[SearchHit], *,
                 history: Sequence[ChatMessage] = (), temperature: float | None = None) -> Answer:
        with observability.stage("generate"):
            return self.inner.generate(question, hits, history=history, temperature=temperature)


class LambdaContainer(Container):
    """The composition root with instrumented ports and Lambda-specific registry settings."""

    lease_seconds: float | None = None

    @cached_property
    def embedder(self) -> Embedder:
        return TimedEmbedder(super().embedder)

    @cached_property
    def store(self) -> VectorStore:
        return TimedStore(super().store)

    @cached_property
    def chat_model(self) -> ChatModel:
        return TimedChatModel(super().chat_model)

    @cached_property
    def answer_generator(self) -> AnswerGenerator:
        generator = super().answer_generator
        return generator if self.provider == "upstage" else TimedAnswerGenerator(generator)

    @cached_property
    def registry(self) -> DocumentRegistry:
        table = self.settings.documents_table
        if table and self.lease_seconds:
            from solar_rag.adapters.dynamodb_registry import DynamoDbDocumentRegistry

            return DynamoDbDocumentRegistry(table, lease_seconds=self.lease_seconds)
        return super().registry


# --- per-container state -----------------------------------------------------------------------

class _State:
    settings: Settings | None = None
    container: LambdaContainer | None = None
    ingestion: S3Ingestion | None = None
    lease_seconds: float | None = None


_state = _State()
_functions: list[_Function] = []


def settings() -> Settings:
    if _state.settings is None:
        from pydantic import ValidationError

        try:
            _state.settings = Settings()
        except ValidationError as error:
            # Field names and reasons only: input values could be secrets.
            fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: {e['msg']}"
                               for e in error.errors(include_input=False))
            raise NotConfigured(f"invalid configuration: {fields}") from None
    return _state.settings


def container() -> LambdaContainer:
    if _state.container is None:
        built = LambdaContainer(settings())
        built.lease_seconds = _state.lease_seconds
        _state.container = built
    return _state.container


def ingestion() -> S3Ingestion:
    if _state.ingestion is None:
        from functools import partial

        from solar_rag.adapters.s3_source import S3ObjectSource
        from solar_rag.services.s3_ingestion import S3Ingestion
        from solar_rag.text.budget import parse_limits
        from solar_rag.text.files import SUPPORTED_EXTENSIONS, load_file

        current = container()
        bucket = current.settings.documents_bucket
        if not bucket:
            raise NotConfigured("DOCUMENTS_BUCKET is not set: the indexer cannot read S3 objects")
        _state.ingestion = S3Ingestion(
            indexing=current.indexing_service, objects=S3ObjectSource(bucket),
            load=partial(load_file, limits=parse_limits(current.settings)),
            supported_extensions=SUPPORTED_EXTENSIONS,
            max_object_bytes=current.settings.max_object_bytes, bucket=bucket,
        )
    return _state.ingestion


def reset() -> None:
    """Forget settings, container, clients and Powertools objects (tests)."""
    from solar_rag.adapters import aws_clients

    _state.settings = _state.container = _state.ingestion = _state.lease_seconds = None
    aws_clients.reset()
    observability.reset()
    for function in _functions:
        function.reset()


def _remember_timeout(context: Any) -> None:
    """Lock leases must outlive the function timeout: learn it from the first invocation."""
    if _state.lease_seconds is not None or context is None:
        return
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        seconds = math.ceil(int(remaining()) / 1000)
        _state.lease_seconds = max(MIN_LEASE_SECONDS, seconds + LEASE_MARGIN_SECONDS)


# --- init-time imports ---------------------------------------------------------------------------

FunctionRole = Literal["chat", "query", "indexer"]
_OBSERVABILITY = ("aws_lambda_powertools.logging", "aws_lambda_powertools.metrics",
                  "aws_lambda_powertools.tracing")


def modules_for(role: FunctionRole, current: Settings) -> list[str]:
    """What a function will import on its first request, given the configuration.

    Importing it during Lambda's init phase (boosted CPU, captured by SnapStart) instead of
    the first invocation; never more than the function uses (the chat function never loads
    OpenSearch, S3 or the parsers).
    """
    modules = list(_OBSERVABILITY)
    if current.uses_upstage:
        modules.append("solar_rag.adapters.upstage")
        if not (current.upstage_api_key and current.upstage_api_key.get_secret_value().strip()):
            modules += ["solar_rag.adapters.secrets", "aws_lambda_powertools.utilities.parameters"]
    if role == "chat":
        return [*modules, "solar_rag.services.chat"]
    modules += ["solar_rag.services.search"]
    if current.vector_store == "opensearch":
        modules.append("solar_rag.adapters.opensearch")
    if not current.uses_upstage:
        modules.append("solar_rag.adapters.offline_embedder")
    if role == "query":
        return [*modules, "solar_rag.services.query", "solar_rag.services.generation"]
    modules += ["solar_rag.services.indexing", "solar_rag.services.s3_ingestion", "solar_rag.text.files",
                "solar_rag.text.parsers", "solar_rag.text.chunking", "solar_rag.adapters.s3_source",
                "aws_lambda_powertools.utilities.batch"]
    if current.documents_table:
        modules.append("solar_rag.adapters.dynamodb_registry")
    return modules


def preload(role: FunctionRole) -> None:
    """Import at init what ``role`` needs; no client is built and nothing touches the network.

    Settings errors are left for the first request, which answers them as a 503.
    """
    import importlib

    try:
        current = Settings()
    except Exception:
        return
    for name in modules_for(role, current):
        importlib.import_module(name)


# --- handlers ------------------------------------------------------------------------------------

class _Function:
    """A Lambda entry point, decorated with the Powertools utilities on first invocation."""

    def __init__(self, dispatch: Handler, *, correlation_id_path: str | None) -> None:
        self._dispatch = dispatch
        self._correlation_id_path = correlation_id_path
        self._decorated: Handler | None = None
        _functions.append(self)

    def reset(self) -> None:
        self._decorated = None

    def _decorate(self) -> Handler:
        log, metrics, tracer = observability.logger(), observability.metrics(), observability.tracer()
        handler: Handler = tracer.capture_lambda_handler(self._dispatch, capture_response=False)
        handler = metrics.log_metrics(handler, capture_cold_start_metric=True)
        decorated: Handler = log.inject_lambda_context(
            handler, log_event=False, correlation_id_path=self._correlation_id_path, clear_state=True)
        return decorated

    def __call__(self, event: Event, context: Any) -> dict[str, Any]:
        _remember_timeout(context)
        if self._decorated is None:
            self._decorated = self._decorate()
        return self._decorated(event, context)


def _mangum(routers: Sequence[str]) -> Handler:
    from mangum import Mangum

    from solar_rag.api.app import create_app

    app = create_app(container, routers=routers)
    adapter: Handler = Mangum(app, lifespan="off")
    return adapter


def _decode_path(event: Event) -> Event:
    """API Gateway REST passes the path percent-encoded; ASGI routing wants it decoded, so an
    id with ``/`` (``reports%2F2024%2Fq1.md``) matches ``{document_id:path}``."""
    path = event.get("path")
    if isinstance(path, str) and "%" in path:
        return {**event, "path": unquote(path)}
    return event


def _ensure_event_loop() -> None:
    """Mangum calls ``asyncio.get_event_loop()``, which raises on Python 3.12 once anything in
    the process has run ``asyncio.run()`` (it leaves no current loop). Give it a usable loop."""
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            if not asyncio.get_event_loop().is_closed():
                return
        except RuntimeError:
            pass
    asyncio.set_event_loop(asyncio.new_event_loop())


def _http_dispatch(routers: Sequence[str]) -> Handler:
    adapter = _mangum(routers)

    def dispatch(event: Event, context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            _ensure_event_loop()
            response = adapter(_decode_path(event), context)
        except Exception as error:  # never a stack trace to the caller
            logger.error("unhandled error in HTTP handler: %s", type(error).__name__, exc_info=error)
            response = {"statusCode": 500, "headers": {"content-type": "application/json"},
                        "multiValueHeaders": {}, "isBase64Encoded": False,
                        "body": '{"detail":"internal error"}'}
        # Method, route and status only: bodies hold questions and documents.
        logger.info("http request", extra={
            "http_method": event.get("httpMethod"), "path": event.get("path"),
            "status": response.get("statusCode"),
            "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
        return response

    return dispatch


def http_function(role: FunctionRole, routers: Sequence[str]) -> Handler:
    """A handler serving ``routers`` (names of ``api.app.ROUTER_NAMES``) for REST API events."""
    from aws_lambda_powertools.logging import correlation_paths

    preload(role)
    return _Function(_http_dispatch(routers), correlation_id_path=correlation_paths.API_GATEWAY_REST)


def is_sqs_event(event: Mapping[str, Any]) -> bool:
    records = event.get("Records")
    return (isinstance(records, list) and bool(records) and isinstance(records[0], Mapping)
            and records[0].get("eventSource") == "aws:sqs")


def _report(results: Mapping[str, list[IndexOutcome] | Exception]) -> Callable[[SQSRecord], None]:
    """The record handler for Powertools: reports what ``handle_messages`` found per message
    (an exception marks the record failed, and SQS redelivers it alone)."""

    def report(record: SQSRecord) -> None:
        log = observability.logger()
        result = results[record.message_id]
        if isinstance(result, Exception):
            observability.record_document_failed()
            raise result
        for outcome in result:
            if outcome.status == "failed":
                observability.record_document_failed()
            log.info("s3 change handled", extra={
                "message_id": record.message_id, "document_id": outcome.id,
                "status": outcome.status, "chunks": outcome.chunks})

    return report


def sqs_batch(event: Event, context: Any) -> dict[str, Any]:
    """Partial batch response: each failed record is reported alone and redelivered by SQS.

    The batch is handled as a whole first (documents of different messages share embedding
    requests and one vector store write), then each record's result is reported.
    """
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    records = [r for r in event.get("Records", []) if isinstance(r, Mapping)]
    handled = ingestion().handle_messages([str(r.get("body", "")) for r in records])
    results = {str(r.get("messageId")): result for r, result in zip(records, handled, strict=True)}
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False,
                               logger=logging.getLogger("solar_rag.batch"))
    response = process_partial_response(event=event, record_handler=_report(results),
                                        processor=processor, context=context)
    return dict(response)


def indexer_function(routers: Sequence[str]) -> Handler:
    """SQS batches of S3 notifications, and the HTTP ``routers`` for everything else."""
    from aws_lambda_powertools.logging import correlation_paths

    preload("indexer")
    http = _http_dispatch(routers)

    def dispatch(event: Event, context: Any) -> dict[str, Any]:
        if is_sqs_event(event):
            return sqs_batch(event, context)
        return http(event, context)

    # The correlation id path finds nothing in SQS events, which is fine.
    return _Function(dispatch, correlation_id_path=correlation_paths.API_GATEWAY_REST)

