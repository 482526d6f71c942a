"""How big each benchmark runs: ``full`` (the issue's sizes, < 15 min on 2 cores) or ``quick``."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scale:
    name: str
    cold_start_runs: int
    ingestion_documents: int
    ingestion_bound_seconds: float
    """The run's rate limits are scaled (FakeUpstage ``time_scale``) so that the physical
    bound (tokens sent ÷ tokens per minute) lasts about this long."""
    query_documents: int
    query_requests: int
    store_sizes: tuple[int, ...]
    store_queries: int
    chunking_documents: int


FULL = Scale(
    name="full", cold_start_runs=7, ingestion_documents=2000, ingestion_bound_seconds=45.0,
    query_documents=20, query_requests=200, store_sizes=(10_000, 100_000), store_queries=100,
    chunking_documents=2000,
)
QUICK = Scale(
    name="quick", cold_start_runs=3, ingestion_documents=300, ingestion_bound_seconds=10.0,
    query_documents=30, query_requests=60, store_sizes=(2_000, 10_000), store_queries=50,
    chunking_documents=300,
)


def from_env(quick: bool = False) -> Scale:
    """``--quick`` or ``BENCH_SCALE=quick`` selects the development size."""
    if quick or os.environ.get("BENCH_SCALE", "").strip().lower() == "quick":
        return QUICK
    return FULL
