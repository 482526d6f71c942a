"""Upstage rate-limit shares: each embedding function's per-container limit.

The limiter in ``solar_rag.resilience.rate_limit`` lives in one container; Upstage counts per
organisation key and model. Every container of a function gets
``floor(quota × share / max_concurrency)`` so that, with every container of every function
busy at once, the sum stays within the quota:

    Σ_f  per_container(f) × max_concurrency(f)  ≤  quota

``max_concurrency`` is enforced by Lambda (reserved concurrency); the indexer's SQS event
source is capped below it (``ingestion_max_concurrency``). The query function embeds
questions (query model) and, through ``POST /v1/embeddings``, may embed passages too, so it
shares the passage model's quota with the indexer: one split covers both models. The
streaming function (``/v1/query`` and ``/v1/chat`` streamed) embeds questions too: it has the
query function's concurrency and half of its part. The chat function embeds nothing and gets
no share.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra_cdk.config import DeployConfig


@dataclass(frozen=True)
class Share:
    requests_per_minute: int
    tokens_per_minute: int
    max_concurrency: int

    def env(self) -> dict[str, str]:
        return {
            "UPSTAGE_REQUESTS_PER_MINUTE": str(self.requests_per_minute),
            "UPSTAGE_TOKENS_PER_MINUTE": str(self.tokens_per_minute),
        }


def upstage_shares(config: DeployConfig) -> dict[str, Share]:
    """``{"query": Share, "stream": Share, "indexer": Share}`` for this configuration."""
    upstage = config.upstage
    # The streaming function answers /v1/query and /v1/chat with the query function's sizing:
    # the two split the questions' part of the quota.
    fractions = {"query": upstage.query_share / 2, "stream": upstage.query_share / 2,
                 "indexer": 1.0 - upstage.query_share}
    sizings = {"query": config.query, "stream": config.query, "indexer": config.indexer}
    shares = {}
    for name, fraction in fractions.items():
        concurrency = sizings[name].max_concurrency
        if concurrency is None:
            raise ValueError(f"{name} needs a maximum concurrency to get a share of the quota")
        shares[name] = Share(
            requests_per_minute=max(1, int(upstage.requests_per_minute * fraction) // concurrency),
            tokens_per_minute=max(1, int(upstage.tokens_per_minute * fraction) // concurrency),
            max_concurrency=concurrency,
        )
    return shares


def document_parse_env(config: DeployConfig) -> dict[str, str]:
    """The indexer's Document Parse settings: the types it reads with it, and each
    container's share of the organisation's requests per second (every indexer container
    may parse at once)."""
    upstage = config.upstage
    concurrency = config.indexer.max_concurrency or 1
    return {
        "DOCUMENT_PARSE_TYPES": upstage.document_parse_types,
        "DOCUMENT_PARSE_SYNC_RPS": f"{upstage.document_parse_sync_rps / concurrency:.4g}",
        "DOCUMENT_PARSE_ASYNC_RPS": f"{upstage.document_parse_async_rps / concurrency:.4g}",
    }
