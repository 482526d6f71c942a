"""Deployment configuration: every option comes from CDK context with a default that deploys.

``cdk synth -c stage=prod -c vector_store=serverless -c alarm_email=ops@example.com`` etc.
Values given on the command line arrive as strings, values in ``cdk.json`` keep their JSON
type: the parsers below accept both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

Stage = Literal["dev", "prod"]
VectorStoreKind = Literal["domain", "serverless"]
ServerlessGeneration = Literal["nextgen", "classic"]
Architecture = Literal["arm64", "x86_64"]
ARCHITECTURES: tuple[Architecture, ...] = ("arm64", "x86_64")


ContextGetter = Callable[[str], object]

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,20}$")
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]{1,512}$")
# The values CloudWatch Logs accepts for a retention period.
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip


class ConfigError(ValueError):
    """A context value is missing, malformed or out of range."""


@dataclass(frozen=True)
class FunctionSizing:
    memory_mb: int
    timeout_seconds: int
    # Reserved concurrency: the function's maximum number of containers (None = unreserved).
    max_concurrency: int | None = None


@dataclass(frozen=True)
class DomainConfig:
    engine_version: str
    instance_type: str
    data_nodes: int
    volume_gib: int
    zone_awareness: bool
    dedicated_master_type: str | None
    dedicated_master_nodes: int


@dataclass(frozen=True)
class ServerlessConfig:
    generation: ServerlessGeneration
    standby_replicas: bool
    max_indexing_ocu: int
    max_search_ocu: int


@dataclass(frozen=True)
class ApiConfig:
    throttle_rate: float
    throttle_burst: int
    quota_per_day: int
    cors_origins: tuple[str, ...]


@dataclass(frozen=True)
class IngestionConfig:
    batch_size: int
    max_batching_window_seconds: int
    max_concurrency: int
    max_receive_count: int
    noncurrent_version_days: int
    max_object_bytes: int


@dataclass(frozen=True)
class UpstageConfig:
    base_url: str
    chat_model: str
    embedding_query_model: str
    embedding_passage_model: str
    embedding_dimensions: int
    # The organisation's quota per embedding model (Upstage counts per key and model; every
    # key of an organisation gets the same limit) and the query function's part of it.
    requests_per_minute: int = 100
    tokens_per_minute: int = 300_000
    query_share: float = 0.4
    # Document Parse (the indexer only): the types sent to it, and the organisation's rate
    # limits (3 RPS synchronous / 6 RPS asynchronous), split between indexer containers.
    document_parse_types: str = "image/*,pptx,xlsx,hwp,hwpx"
    document_parse_sync_rps: float = 3.0
    document_parse_async_rps: float = 6.0


@dataclass(frozen=True)
class DeployConfig:
    stage: Stage
    prefix: str
    account: str | None
    region: str | None
    architecture: Architecture
    vector_store: VectorStoreKind
    opensearch_index: str
    domain: DomainConfig
    serverless: ServerlessConfig
    api: ApiConfig
    ingestion: IngestionConfig
    upstage: UpstageConfig
    chat: FunctionSizing
    query: FunctionSizing
    indexer: FunctionSizing
    snap_start: bool
    log_retention_days: int
    log_level: str
    alarm_email: str | None
    alarm_topic_arn: str | None
    api_latency_p95_ms: int
    retain_data: bool
    tags: Mapping[str, str] = field(default_factory=dict)
    reindex_principal_arn: str | None = None
    """An IAM role (this account) granted what ``rag reindex`` needs (docs/deploy.md)."""

    @property
    def stack_name(self) -> str:
        return f"SolarRag-{self.stage}"

    @property
    def opensearch_target(self) -> str:
        """Value of ``OPENSEARCH_TARGET`` for the functions."""
        if self.vector_store == "domain":
            return "domain"
        return "serverless" if self.serverless.generation == "nextgen" else "serverless-classic"


# ---------------------------------------------------------------- parsing helpers


def _text(get: ContextGetter, key: str, default: str) -> str:
    value = get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, str | int | float):
        raise ConfigError(f"context {key!r} must be a string, got {value!r}")
    return str(value)


def _optional_text(get: ContextGetter, key: str) -> str | None:
    value = get(key)
    if value is None or value == "":
        return None
    return str(value)


def _int(get: ContextGetter, key: str, default: int, *, lo: int, hi: int) -> int:
    return _bounded(get, key, default, int, "an integer", lo=lo, hi=hi)


def _float(get: ContextGetter, key: str, default: float, *, lo: float, hi: float) -> float:
    return _bounded(get, key, default, float, "a number", lo=lo, hi=hi)


def _bounded[N: (int, float)](get: ContextGetter, key: str, default: N,
                              parse: Callable[[str], N], kind: str, *, lo: N, hi: N) -> N:
    value = get(key)
    if value is None or value == "":
        return default
    try:
        number = parse(str(value))
    except ValueError as exc:
        raise ConfigError(f"context {key!r} must be {kind}, got {value!r}") from exc
    if not lo <= number <= hi:
        raise ConfigError(f"context {key!r} must be within [{lo}, {hi}], got {number}")
    return number


def _bool(get: ContextGetter, key: str, default: bool) -> bool:
    value = get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"context {key!r} must be a boolean, got {value!r}")


def _choice[T](get: ContextGetter, key: str, default: T, choices: tuple[T, ...]) -> T:
    value = get(key)
    if value is None or value == "":
        return default
    for choice in choices:
        if str(value) == str(choice):
            return choice
    raise ConfigError(f"context {key!r} must be one of {choices}, got {value!r}")


def _list(get: ContextGetter, key: str) -> tuple[str, ...]:
    value = get(key)
    if value is None or value == "":
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def _retention(get: ContextGetter, default: int) -> int:
    days = _int(get, "log_retention_days", default, lo=1, hi=3653)
    if days not in RETENTION_DAYS:
        raise ConfigError(f"context 'log_retention_days' must be one of {RETENTION_DAYS}")
    return days


# ---------------------------------------------------------------- the loader


def load_config(get: ContextGetter, environ: Mapping[str, str] | None = None) -> DeployConfig:
    """Build the typed configuration from a context getter (``app.node.try_get_context``)."""
    env = os.environ if environ is None else environ
    stage: Stage = _choice(get, "stage", "dev", ("dev", "prod"))
    prod = stage == "prod"
    prefix = _text(get, "prefix", f"solar-rag-{stage}")
    if not _NAME.match(prefix):
        raise ConfigError(f"context 'prefix' must match {_NAME.pattern} (it names buckets and collections)")

    domain = DomainConfig(
        engine_version=_text(get, "opensearch_version", "3.3"),
        instance_type=_text(
            get, "opensearch_instance_type", "m7g.large.search" if prod else "t3.small.search"
        ),
        data_nodes=_int(get, "opensearch_data_nodes", 2 if prod else 1, lo=1, hi=20),
        volume_gib=_int(get, "opensearch_volume_gib", 20 if prod else 10, lo=10, hi=1024),
        zone_awareness=_bool(get, "opensearch_zone_awareness", prod),
        dedicated_master_type=_optional_text(get, "opensearch_master_instance_type"),
        dedicated_master_nodes=_int(get, "opensearch_master_nodes", 0, lo=0, hi=5),
    )
    if domain.zone_awareness and domain.data_nodes % 2:
        raise ConfigError("zone awareness (2 AZ) needs an even number of data nodes")
    if domain.dedicated_master_nodes and not domain.dedicated_master_type:
        raise ConfigError("opensearch_master_nodes needs opensearch_master_instance_type")

    serverless = ServerlessConfig(
        generation=_choice(get, "serverless_generation", "nextgen", ("nextgen", "classic")),
        standby_replicas=_bool(get, "serverless_standby_replicas", prod),
        max_indexing_ocu=_int(get, "serverless_max_indexing_ocu", 4 if prod else 2, lo=1, hi=96),
        max_search_ocu=_int(get, "serverless_max_search_ocu", 4 if prod else 2, lo=1, hi=96),
    )

    api = ApiConfig(
        throttle_rate=_float(get, "api_throttle_rate", 20.0 if prod else 5.0, lo=1, hi=10_000),
        throttle_burst=_int(get, "api_throttle_burst", 40 if prod else 10, lo=1, hi=5_000),
        quota_per_day=_int(get, "api_quota_per_day", 50_000 if prod else 5_000, lo=1, hi=10**8),
        cors_origins=_list(get, "cors_origins"),
    )
    for origin in api.cors_origins:
        if origin != "*" and not origin.startswith(("https://", "http://localhost")):
            raise ConfigError(f"CORS origin {origin!r} must be https:// (or http://localhost)")

    indexer = FunctionSizing(
        memory_mb=_int(get, "indexer_memory_mb", 1769, lo=128, hi=10_240),
        timeout_seconds=_int(get, "indexer_timeout_seconds", 300, lo=30, hi=900),
    )
    ingestion = IngestionConfig(
        batch_size=_int(get, "ingestion_batch_size", 10, lo=1, hi=10),
        max_batching_window_seconds=_int(get, "ingestion_batching_window_seconds", 5, lo=0, hi=300),
        max_concurrency=_int(get, "ingestion_max_concurrency", 2, lo=2, hi=1000),
        max_receive_count=_int(get, "dlq_max_receive_count", 5, lo=1, hi=1000),
        noncurrent_version_days=_int(get, "noncurrent_version_days", 30, lo=1, hi=3650),
        max_object_bytes=_int(get, "max_object_bytes", 50 * 1024 * 1024, lo=1024, hi=2**31),
    )

    upstage = UpstageConfig(
        base_url=_text(get, "upstage_base_url", "https://api.upstage.ai/v1"),
        chat_model=_text(get, "upstage_chat_model", "solar-pro3"),
        embedding_query_model=_text(get, "upstage_embedding_query_model", "solar-embedding-2-query"),
        embedding_passage_model=_text(get, "upstage_embedding_passage_model", "solar-embedding-2-passage"),
        embedding_dimensions=_int(get, "embedding_dimensions", 1024, lo=8, hi=16_000),
        requests_per_minute=_int(get, "upstage_requests_per_minute", 100, lo=1, hi=1_000_000),
        tokens_per_minute=_int(get, "upstage_tokens_per_minute", 300_000, lo=1, hi=10**9),
        query_share=_float(get, "upstage_query_share", 0.4, lo=0.05, hi=0.95),
        document_parse_types=_text(get, "document_parse_types", "image/*,pptx,xlsx,hwp,hwpx"),
        document_parse_sync_rps=_float(get, "document_parse_sync_rps", 3.0, lo=0.1, hi=1000),
        document_parse_async_rps=_float(get, "document_parse_async_rps", 6.0, lo=0.1, hi=1000),
    )
    try:  # the functions would refuse it at start-up: refuse it at synth
        from solar_rag.parsing.content_types import parse_type_selection

        parse_type_selection(upstage.document_parse_types)
    except ValueError as error:
        raise ConfigError(f"document_parse_types: {error}") from None
    # Reserved concurrency. The indexer serves the S3 batches (at most
    # ingestion_max_concurrency at once) and HTTP indexing.
    max_concurrency = {
        "query": _int(get, "query_max_concurrency", 4 if prod else 2, lo=1, hi=1000),
        "indexer": _int(
            get, "indexer_max_concurrency", ingestion.max_concurrency + (2 if prod else 1), lo=2, hi=1000
        ),
    }
    if max_concurrency["indexer"] <= ingestion.max_concurrency:
        raise ConfigError(
            "indexer_max_concurrency must exceed ingestion_max_concurrency: S3 batches would "
            "take every indexer container and HTTP indexing would be throttled"
        )
    for name, share in (("query", upstage.query_share), ("indexer", 1 - upstage.query_share)):
        if int(upstage.requests_per_minute * share) < max_concurrency[name]:
            raise ConfigError(
                f"{name}_max_concurrency={max_concurrency[name]} leaves less than one Upstage "
                f"request per minute per container (upstage_requests_per_minute="
                f"{upstage.requests_per_minute}, upstage_query_share={upstage.query_share})"
            )
    query = FunctionSizing(
        memory_mb=_int(get, "query_memory_mb", 1024, lo=128, hi=10_240),
        timeout_seconds=_int(get, "query_timeout_seconds", 29, lo=3, hi=900),
        max_concurrency=max_concurrency["query"],
    )
    indexer = replace(indexer, max_concurrency=max_concurrency["indexer"])

    return DeployConfig(
        stage=stage,
        prefix=prefix,
        account=_optional_text(get, "account") or env.get("CDK_DEFAULT_ACCOUNT") or None,
        region=_optional_text(get, "region") or env.get("CDK_DEFAULT_REGION") or None,
        architecture=_choice(get, "architecture", "arm64", ARCHITECTURES),
        vector_store=_choice(get, "vector_store", "domain", ("domain", "serverless")),
        opensearch_index=_text(get, "opensearch_index", "rag-chunks"),
        domain=domain,
        serverless=serverless,
        api=api,
        ingestion=ingestion,
        upstage=upstage,
        chat=FunctionSizing(
            memory_mb=_int(get, "chat_memory_mb", 1024, lo=128, hi=10_240),
            timeout_seconds=_int(get, "chat_timeout_seconds", 29, lo=3, hi=900),
        ),
        query=query,
        indexer=indexer,
        snap_start=_bool(get, "snap_start", prod),
        log_retention_days=_retention(get, 90 if prod else 14),
        log_level=_choice(get, "log_level", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        alarm_email=_optional_text(get, "alarm_email"),
        alarm_topic_arn=_optional_text(get, "alarm_topic_arn"),
        api_latency_p95_ms=_int(get, "api_latency_p95_ms", 10_000, lo=100, hi=29_000),
        retain_data=_bool(get, "retain_data", prod),
        tags={"project": "solar-rag", "stage": stage},
        reindex_principal_arn=_reindex_principal(get, env, _optional_text(get, "account")
                                                 or env.get("CDK_DEFAULT_ACCOUNT") or None),
    )


REINDEX_PRINCIPAL_ENV = "SOLAR_RAG_REINDEX_PRINCIPAL_ARN"
"""Fallback for the context (the deploy workflow sets it from an environment variable)."""


def _reindex_principal(get: ContextGetter, env: Mapping[str, str],
                       account: str | None) -> str | None:
    """An IAM role ARN of the stack's account (the stack attaches a policy to it)."""
    arn = _optional_text(get, "reindex_principal_arn") or env.get(REINDEX_PRINCIPAL_ENV) or None
    if arn is None:
        return None
    match = _ROLE_ARN.match(arn)
    if match is None:
        raise ConfigError(f"context 'reindex_principal_arn' must be an IAM role ARN "
                          f"(arn:aws:iam::<account>:role/<name>), got {arn!r}")
    if account and match.group("account") != account:
        raise ConfigError(f"context 'reindex_principal_arn' must be a role of the stack's "
                          f"account {account} (the stack attaches its policy to it), got {arn!r}")
    return arn
