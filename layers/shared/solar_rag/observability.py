"""The one place that creates the Powertools Logger and Metrics.

Tracing is the functions' active tracing (``Tracing.ACTIVE`` in the stack): Lambda records
each invocation's segment itself. The Powertools Tracer is not used: it needs the X-Ray SDK
(absent from the runtime and the layer) and its patching costs cold-start time (figures in
docs/decisions.md, 2026-12-06).

Everything is created on first use, so importing this module costs nothing and a function
only pays for what it uses. Services never import this module: Lambda wiring
(``lambda_runtime``) wraps the ports with timing decorators that call ``stage``.

Metrics (CloudWatch EMF, namespace ``POWERTOOLS_METRICS_NAMESPACE``, default ``SolarRag``):
``EmbedLatency``, ``RetrieveLatency``, ``GenerateLatency`` (ms), ``PromptTokens``,
``CompletionTokens``, ``TokensUsed``, ``ChunksIndexed``, ``DocumentsFailed``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from time import perf_counter
from typing import IO, TYPE_CHECKING, cast

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

    from solar_rag.domain import Usage

DEFAULT_SERVICE = "solar-rag"
DEFAULT_NAMESPACE = "SolarRag"
PACKAGE_LOGGER = "solar_rag"
STAGES = ("embed", "retrieve", "generate", "upsert")


def service_name() -> str:
    return os.environ.get("POWERTOOLS_SERVICE_NAME") or DEFAULT_SERVICE


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is now (Lambda: always the same; tests: captured)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@cache
def logger() -> Logger:
    """JSON logger; the package's standard-library loggers (``solar_rag.*``) write through it.

    Events are never logged (``POWERTOOLS_LOGGER_LOG_EVENT`` stays off): they carry document
    text and questions.
    """
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    log = Logger(service=service_name(), level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
                 stream=cast("IO[str]", _CurrentStdout()))
    logging.getLogger(PACKAGE_LOGGER)  # registered, so children propagate to a configured parent
    copy_config_to_registered_loggers(source_logger=log, include={PACKAGE_LOGGER})
    return log


@cache
def metrics() -> Metrics:
    from aws_lambda_powertools import Metrics

    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE
    return Metrics(service=service_name(), namespace=namespace)


def _count(name: str, value: float, unit: str = "Count") -> None:
    metrics().add_metric(name=name, unit=unit, value=value)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a pipeline stage: emits ``<Name>Latency`` in milliseconds, also when it fails."""
    started = perf_counter()
    try:
        yield
    finally:
        elapsed_ms = (perf_counter() - started) * 1000.0
        _count(f"{name.capitalize()}Latency", elapsed_ms, "Milliseconds")


def record_tokens(usage: Usage) -> None:
    _count("PromptTokens", usage.prompt_tokens)
    _count("CompletionTokens", usage.completion_tokens)
    _count("TokensUsed", usage.total_tokens)


def record_chunks_indexed(count: int) -> None:
    _count("ChunksIndexed", count)


def record_document_failed() -> None:
    _count("DocumentsFailed", 1)


def reset() -> None:
    """Forget the created objects and pending metrics, and give the package's standard-library
    loggers back their default wiring (tests)."""
    if metrics.cache_info().currsize:
        metrics().clear_metrics()
    if logger.cache_info().currsize:
        package = logging.getLogger(PACKAGE_LOGGER)
        package.handlers = []
        package.propagate = True
        package.setLevel(logging.NOTSET)
    for factory in (logger, metrics):
        factory.cache_clear()
