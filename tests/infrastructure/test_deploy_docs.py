"""docs/deploy.md states values the configuration decides: they must agree with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra_cdk.config import DeployConfig, load_config
from infra_cdk.quota import upstage_shares

DEPLOY_MD = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


@pytest.fixture(scope="module")
def text() -> str:
    return DEPLOY_MD.read_text(encoding="utf-8")


def config(stage: str) -> DeployConfig:
    return load_config({"stage": stage}.get, {})


def _row(text: str, key: str) -> list[str]:
    """The cells of the configuration table's row that starts with ``key``."""
    for line in text.splitlines():
        if line.startswith(f"| {key} |"):
            return [cell.strip() for cell in line.strip("|").split("|")]
    raise AssertionError(f"docs/deploy.md has no configuration row {key}")


def test_ingestion_batching_as_configured(text: str) -> None:
    ingestion = config("dev").ingestion
    match = re.search(r"batches of up to (\d+) messages, (\d+) s window, at most (\d+) concurrent batches", text)
    assert match, "the ingestion row of 'What gets deployed'"
    assert tuple(map(int, match.groups())) == (
        ingestion.batch_size, ingestion.max_batching_window_seconds, ingestion.max_concurrency,
    )
    cells = _row(text, "`ingestion_batch_size`, `ingestion_batching_window_seconds`")
    assert cells[1] == f"{ingestion.batch_size}, {ingestion.max_batching_window_seconds}"
    assert _row(text, "`ingestion_max_concurrency`")[1] == str(ingestion.max_concurrency)


def test_memory_timeouts_and_concurrency_as_configured(text: str) -> None:
    dev, prod = config("dev"), config("prod")
    memory = _row(text, "`chat_memory_mb`, `query_memory_mb`, `indexer_memory_mb`")[1]
    assert memory == f"{dev.chat.memory_mb}, {dev.query.memory_mb}, {dev.indexer.memory_mb}"
    timeouts = _row(text, "`chat_timeout_seconds`, `query_timeout_seconds`, `indexer_timeout_seconds`")[1]
    assert timeouts == f"{dev.chat.timeout_seconds}, {dev.query.timeout_seconds}, {dev.indexer.timeout_seconds}"
    for name in ("query", "indexer"):
        cell = _row(text, f"`{name}_max_concurrency`")[1]
        assert cell == f"{getattr(dev, name).max_concurrency} / {getattr(prod, name).max_concurrency}"
    quota = _row(text, "`upstage_requests_per_minute`, `upstage_tokens_per_minute`")[1]
    assert quota == f"{dev.upstage.requests_per_minute}, {dev.upstage.tokens_per_minute}"
    assert _row(text, "`upstage_query_share`")[1] == str(dev.upstage.query_share)


def test_rate_share_table_matches_the_arithmetic(text: str) -> None:
    rows = re.findall(r"^\| (dev|prod) \| (query|stream|indexer) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|$", text, re.MULTILINE)
    assert len(rows) == 6
    for stage, function, concurrency, rpm, tpm, total in rows:
        cfg = config(stage)
        share = upstage_shares(cfg)[function]
        assert (int(concurrency), int(rpm), int(tpm)) == (
            share.max_concurrency, share.requests_per_minute, share.tokens_per_minute,
        ), (stage, function)
        assert int(total) == share.requests_per_minute * share.max_concurrency
    for stage in ("dev", "prod"):
        assert sum(int(r[5]) for r in rows if r[0] == stage) <= config(stage).upstage.requests_per_minute


def test_snap_start_defaults_as_documented(text: str) -> None:
    section = text.split("## SnapStart per stage", 1)[1].split("\n## ", 1)[0]
    assert "| dev | off |" in section and "| prod | on (`live` alias) |" in section
    assert (config("dev").snap_start, config("prod").snap_start) == (False, True)
    gb = sum(s.memory_mb for s in (config("prod").chat, config("prod").query, config("prod").indexer)) / 1024
    monthly = gb * 30 * 24 * 3600 * 0.0000015046
    assert f"≈ **${monthly:.1f} a month**" in section
