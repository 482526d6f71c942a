"""Document Parse in the deployed indexer: the types it reads, and each container's share of
the organisation's 3 / 6 requests per second (every indexer container may parse at once)."""

from __future__ import annotations

import pytest
from solar_rag.settings import Settings

from infra_cdk.config import ConfigError, load_config
from infra_cdk.quota import document_parse_env
from tests.infrastructure.conftest import Synth
from tests.infrastructure.test_stack import env_of


def test_defaults_split_the_rate_between_indexer_containers() -> None:
    empty: dict[str, object] = {}
    config = load_config(empty.get, {})
    env = document_parse_env(config)
    assert config.indexer.max_concurrency == 3
    assert env == {"DOCUMENT_PARSE_TYPES": "image/*,pptx,xlsx,hwp,hwpx",
                   "DOCUMENT_PARSE_SYNC_RPS": "1", "DOCUMENT_PARSE_ASYNC_RPS": "2"}
    concurrency = config.indexer.max_concurrency
    assert float(env["DOCUMENT_PARSE_SYNC_RPS"]) * concurrency <= 3.0
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
    assert settings.document_parse_extensions >= {".png", ".pptx"}


def test_context_values_and_their_refusal() -> None:
    config = load_config({"document_parse_types": "pdf,image/*", "document_parse_sync_rps": "10",
                          "indexer_max_concurrency": "4"}.get, {})
    env = document_parse_env(config)
    assert env["DOCUMENT_PARSE_TYPES"] == "pdf,image/*"
    assert env["DOCUMENT_PARSE_SYNC_RPS"] == "2.5" and env["DOCUMENT_PARSE_ASYNC_RPS"] == "1.5"
    with pytest.raises(ConfigError, match="document_parse_types"):
        load_config({"document_parse_types": "gif"}.get, {})


def test_the_indexer_alone_gets_the_settings(dev: Synth) -> None:
    indexer = env_of(dev, "indexer")
    assert indexer["DOCUMENT_PARSE_TYPES"] == "image/*,pptx,xlsx,hwp,hwpx"
    assert float(indexer["DOCUMENT_PARSE_SYNC_RPS"]) > 0
    for name in ("chat", "query"):
        assert "DOCUMENT_PARSE_TYPES" not in env_of(dev, name)


def test_document_parse_request_memos_expire(dev: Synth) -> None:
    from solar_rag.adapters.parse_requests import PREFIX

    bucket = dev.resources[dev.logical_id(dev.stack.ingestion.bucket.node.default_child)]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    (rule,) = [r for r in rules if r.get("Id") == "expire-document-parse-requests"]
    assert rule["Prefix"] == PREFIX and rule["ExpirationInDays"] == 31
    assert rule["Status"] == "Enabled"
