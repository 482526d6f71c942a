"""Context parsing: defaults that deploy, stage-dependent values, clear errors."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from infra_cdk.config import ConfigError, load_config


def config(values: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None):  # type: ignore[no-untyped-def]
    values = dict(values or {})
    return load_config(values.get, environ or {})


def test_dev_defaults() -> None:
    c = config()
    assert (c.stage, c.prefix, c.stack_name) == ("dev", "solar-rag-dev", "SolarRag-dev")
    assert c.vector_store == "domain" and c.opensearch_target == "domain"
    assert c.domain.instance_type == "t3.small.search" and c.domain.data_nodes == 1
    assert not c.domain.zone_awareness and not c.snap_start and not c.retain_data
    assert c.ingestion.max_receive_count == 5 and c.ingestion.max_concurrency == 2
    assert c.api.cors_origins == ()
    assert c.account is None and c.region is None
    assert c.architecture == "arm64"
    assert (c.query.max_concurrency, c.indexer.max_concurrency) == (2, 3)


def test_architecture_x86_64_for_machines_that_run_the_layer() -> None:
    assert config({"architecture": "x86_64"}).architecture == "x86_64"


def test_prod_and_command_line_strings() -> None:
    c = config(
        {
            "stage": "prod",
            "snap_start": "false",
            "dlq_max_receive_count": "3",
            "cors_origins": "https://a.example.com, https://b.example.com",
            "vector_store": "serverless",
            "serverless_generation": "classic",
        },
        {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"},
    )
    assert c.domain.zone_awareness and c.domain.data_nodes == 2 and c.retain_data
    assert c.snap_start is False
    assert c.ingestion.max_receive_count == 3
    assert c.api.cors_origins == ("https://a.example.com", "https://b.example.com")
    assert c.opensearch_target == "serverless-classic"
    assert (c.account, c.region) == ("123456789012", "eu-west-1")


def test_context_wins_over_environment_and_json_types_are_accepted() -> None:
    c = config(
        {"region": "ap-northeast-2", "snap_start": True, "cors_origins": ["https://x.io"]},
        {"CDK_DEFAULT_REGION": "us-east-1"},
    )
    assert c.region == "ap-northeast-2" and c.snap_start is True and c.api.cors_origins == ("https://x.io",)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stage": "staging"}, "stage"),
        ({"vector_store": "pinecone"}, "vector_store"),
        ({"ingestion_max_concurrency": "1"}, "ingestion_max_concurrency"),
        ({"dlq_max_receive_count": "many"}, "integer"),
        ({"snap_start": "maybe"}, "boolean"),
        ({"prefix": "Solar_RAG"}, "prefix"),
        ({"log_retention_days": "10"}, "log_retention_days"),
        ({"cors_origins": "http://evil.example.com"}, "CORS"),
        ({"opensearch_zone_awareness": "true", "opensearch_data_nodes": "3"}, "even"),
        ({"opensearch_master_nodes": "3"}, "master_instance_type"),
        ({"architecture": "aarch64"}, r"'architecture' must be one of \('arm64', 'x86_64'\)"),
        ({"architecture": "x86"}, "architecture"),
        ({"indexer_max_concurrency": "2"}, "must exceed ingestion_max_concurrency"),
        ({"query_max_concurrency": "50", "upstage_requests_per_minute": "60"}, "less than one Upstage request"),
        ({"upstage_query_share": "1.5"}, "upstage_query_share"),
    ],
)
def test_invalid_values_are_rejected(values: Mapping[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(values)
