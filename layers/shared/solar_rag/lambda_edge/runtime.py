"""The Lambda edge: events in, calls of the composition root's services, responses out.

- One ``Container`` per execution environment, built ``instrumented`` from the settings; at
  init it builds (``warm``) what the function's routers use, touching no network.
- Every invocation runs under a deadline (``solar_rag.resilience.deadline``): the time Lambda leaves
  minus a margin and, for API Gateway events, at most API Gateway's 29 s integration timeout
  minus a margin, so the function answers 504 JSON before the gateway gives up and stops
  calling Upstage once nobody waits for the answer.
- HTTP: the FastAPI routers behind Mangum, for API Gateway REST (v1 proxy) events; request
  bodies are limited below what fits in Lambda's 6 MB synchronous event.
- SQS: S3 notifications read with Powertools' event classes; the failed messages are
  answered as ``batchItemFailures`` so SQS redelivers them alone.

Tests call ``reset()`` between cases.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from solar_rag import observability
from solar_rag.composition import Container
from solar_rag.errors import NotConfigured, RagError
from solar_rag.resilience import deadline
from solar_rag.settings import load_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from solar_rag.domain import Outcome
    from solar_rag.services.s3_ingestion import ObjectChange
    from solar_rag.settings import Settings

Event = dict[str, Any]
Handler = Callable[[Event, Any], dict[str, Any]]
FunctionRole = Literal["chat", "query", "indexer"]

logger = logging.getLogger("solar_rag.lambda")

API_GATEWAY_TIMEOUT_SECONDS = 29.0
HTTP_MARGIN_SECONDS = 2.0
"""Left after the deadline to map the error and send the answer before API Gateway's 29 s."""
QUEUE_MARGIN_SECONDS = 10.0
"""Left after the deadline of an SQS batch to report its items before the function times out."""
LAMBDA_MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Largest request body the app takes in Lambda. A synchronous invocation's event is at most
6 MB; API Gateway puts the body in a JSON string of the event, where escaping (quotes,
backslashes, newlines) grows it, so 4 MiB leaves room for 50% growth plus headers. Larger
files go through ``POST /v1/uploads``. ``MAX_REQUEST_BYTES`` may lower it; a larger value is a
configuration error (see :func:`lambda_settings`), never silently cut."""
LEASE_MARGIN_SECONDS = 60
MIN_LEASE_SECONDS = 120


# --- per-container state -----------------------------------------------------------------------

class _State:
    container: Container | None = None
    lease_seconds: float | None = None


_state = _State()
_functions: list[_Function] = []


def container() -> Container:
    if _state.container is None:
        _state.container = Container(lambda_settings(), instrumented=True,
                                     lease_seconds=_state.lease_seconds)
    return _state.container


def lambda_settings() -> Settings:
    """The settings, with Lambda's own bound: a ``MAX_REQUEST_BYTES`` above what a synchronous
    invocation can carry is ``NotConfigured`` (every request answers it with 503)."""
    settings = load_settings()
    if request_limit(settings) > LAMBDA_MAX_REQUEST_BYTES:
        raise NotConfigured(
            f"invalid configuration: MAX_REQUEST_BYTES: at most {LAMBDA_MAX_REQUEST_BYTES} in "
            "AWS Lambda (a synchronous invocation's event is at most 6 MB; larger files go "
            "through POST /v1/uploads)")
    return settings


def request_limit(settings: Settings) -> int:
    """The request body limit in Lambda: ``MAX_REQUEST_BYTES`` when it is set, else
    :data:`LAMBDA_MAX_REQUEST_BYTES` (the setting's default, 10 MiB, is API Gateway's)."""
    if "max_request_bytes" in settings.model_fields_set:
        return settings.max_request_bytes
    return LAMBDA_MAX_REQUEST_BYTES


def reset() -> None:
    """Forget settings, container, clients and Powertools objects (tests)."""
    from solar_rag.adapters import aws_clients

    _state.container = _state.lease_seconds = None
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
        if _state.container is not None:
            _state.container.use_lease_seconds(_state.lease_seconds)


def _remaining_seconds(context: Any) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) / 1000 if callable(remaining) else None


def http_budget(context: Any) -> float:
    """Seconds an API Gateway request may take: under the gateway's 29 s and the function's
    remaining time, each less a margin."""
    limit = API_GATEWAY_TIMEOUT_SECONDS
    remaining = _remaining_seconds(context)
    if remaining is not None:
        limit = min(limit, remaining)
    return max(0.0, limit - HTTP_MARGIN_SECONDS)


def queue_budget(context: Any) -> float | None:
    remaining = _remaining_seconds(context)
    return None if remaining is None else max(0.0, remaining - QUEUE_MARGIN_SECONDS)


def _warm(services: Sequence[str]) -> None:
    """Build what the function will use during init (boosted CPU, captured by SnapStart).
    Settings errors are left for the first request, which answers them as a 503."""
    try:
        container().warm(services)
    except RagError:
        return


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
        log, metrics = observability.logger(), observability.metrics()
        handler: Handler = metrics.log_metrics(self._dispatch, capture_cold_start_metric=True)
        decorated: Handler = log.inject_lambda_context(
            handler, log_event=False, correlation_id_path=self._correlation_id_path, clear_state=True)
        return decorated

    def __call__(self, event: Event, context: Any) -> dict[str, Any]:
        _remember_timeout(context)
        if self._decorated is None:
            self._decorated = self._decorate()
        return self._decorated(event, context)


def _create_app(routers: Sequence[str]) -> Any:
    """The app for ``routers``, configured from the container's settings (loaded once); with
    invalid settings the first request answers the configuration error."""
    from solar_rag.api.app import create_app

    try:
        current = container().settings
    except RagError:
        return create_app(container, routers=routers, max_request_bytes=LAMBDA_MAX_REQUEST_BYTES,
                          cors_origins=())
    return create_app(container, routers=routers, max_request_bytes=request_limit(current),
                      cors_origins=current.cors_origins)


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


INTERNAL_ERROR = {"statusCode": 500, "headers": {"content-type": "application/json"},
                  "multiValueHeaders": {}, "isBase64Encoded": False,
                  "body": '{"detail":"internal error"}'}


def _http_dispatch(routers: Sequence[str]) -> Handler:
    from mangum import Mangum


    adapter = Mangum(_create_app(routers),
                     lifespan="off")

    def dispatch(event: Event, context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            _ensure_event_loop()
            with deadline.budget(http_budget(context)):
                response: dict[str, Any] = adapter(_decode_path(event), context)
        except Exception as error:  # never a stack trace to the caller
            logger.error("unhandled error in HTTP handler: %s", type(error).__name__, exc_info=error)
            response = dict(INTERNAL_ERROR)
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

    from solar_rag.api.app import services_for

    _warm(services_for(routers))
    return _Function(_http_dispatch(routers), correlation_id_path=correlation_paths.API_GATEWAY_REST)


def is_sqs_event(event: Event) -> bool:
    records = event.get("Records")
    return (isinstance(records, list) and bool(records) and isinstance(records[0], dict)
            and records[0].get("eventSource") == "aws:sqs")


def _report(record: SQSRecord, result: list[Outcome] | RagError) -> bool:
    """Log one message's result; whether it must be redelivered (a batch item failure):
    unreadable, or an outcome not settled (deferred, or failed for a passing reason)."""
    log = observability.logger()
    unsettled = result if isinstance(result, RagError) else next(
        (outcome.error for outcome in result if not outcome.settled), None)
    if unsettled is not None:
        observability.record_document_failed()
        message = unsettled.message if isinstance(unsettled, RagError) else type(unsettled).__name__
        log.warning("s3 change failed; the message will be redelivered", extra={
            "message_id": record.message_id, "error": message,
            "error_type": type(unsettled).__name__})
    for outcome in result if isinstance(result, list) else []:
        if outcome.status == "failed" and outcome.settled:
            observability.record_document_failed()
        log.info("s3 change handled", extra={
            "message_id": record.message_id, "document_id": outcome.id,
            "status": outcome.status, "chunks": outcome.chunks})
    return unsettled is not None


def sqs_batch(event: Event, context: Any) -> dict[str, Any]:
    """Partial batch response: each failed message is reported alone and redelivered by SQS.

    The readable messages are applied as a whole (documents of different messages share
    embedding requests and one vector store write), then each message's result is reported.
    """
    from aws_lambda_powertools.utilities.data_classes import SQSEvent

    from solar_rag.lambda_edge.events import parse_notification

    records = list(SQSEvent(event).records)
    results: list[list[Outcome] | RagError]
    try:
        ingestion = container().s3_ingestion
        messages: list[list[ObjectChange] | RagError] = []
        for record in records:
            try:
                messages.append(parse_notification(record.body, bucket=ingestion.bucket))
            except RagError as error:
                messages.append(error)
        with deadline.budget(queue_budget(context)):
            applied = iter(ingestion.apply([m for m in messages if not isinstance(m, RagError)]))
        results = [m if isinstance(m, RagError) else next(applied) for m in messages]
    except RagError as error:  # not configured: every message waits for a redrive
        logger.error("indexer cannot handle the batch: %s", error.message)
        results = [error] * len(records)
    failures = [{"itemIdentifier": record.message_id}
                for record, result in zip(records, results, strict=True) if _report(record, result)]
    return {"batchItemFailures": failures}


def indexer_function(routers: Sequence[str]) -> Handler:
    """SQS batches of S3 notifications, and the HTTP ``routers`` for everything else."""
    from aws_lambda_powertools.logging import correlation_paths

    from solar_rag.api.app import services_for

    _warm([*services_for(routers), "s3_ingestion"])
    http = _http_dispatch(routers)

    def dispatch(event: Event, context: Any) -> dict[str, Any]:
        if is_sqs_event(event):
            return sqs_batch(event, context)
        return http(event, context)

    # The correlation id path finds nothing in SQS events, which is fine.
    return _Function(dispatch, correlation_id_path=correlation_paths.API_GATEWAY_REST)
