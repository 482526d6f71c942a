"""Chaos ingestion (issue 8.1): after a seeded storm of S3 changes, duplicates, reordering,
crashes and upstream faults, the index equals the bucket. See ``tests/reliability/chaos.py``.

CI runs 500 operations over 100 keys. Longer: ``RAG_CHAOS_OPS=5000 RAG_CHAOS_KEYS=300`` or
``scripts/chaos`` (``python -m tests.reliability.chaos --ops 5000 --seed N``).
"""

from __future__ import annotations

import pytest
from solar_rag.domain import ChangeMarker

from tests.reliability.chaos import UPSTAGE_KEY, ChaosConfig, run_chaos
from tests.reliability.conftest import Recorder, env_int

OPS = env_int("RAG_CHAOS_OPS", 500)
KEYS = env_int("RAG_CHAOS_KEYS", 100)
SEED = env_int("RAG_CHAOS_SEED", 7)


def test_index_equals_bucket_after_chaos(figures: Recorder, capfd: pytest.CaptureFixture[str]) -> None:
    result = run_chaos(ChaosConfig(ops=OPS, keys=KEYS, seed=SEED))
    summary = result.as_dict()
    figures(**summary)
    out, err = capfd.readouterr()

    assert summary["operations_total"] == OPS and result.keys >= min(KEYS, 100)
    assert result.mismatches == [], result.mismatches[:10]
    assert result.live_documents > 0 and result.chunks_in_index > 0
    # The storm really happened (fixed seed: these are deterministic but for timing noise).
    assert result.upstage_faults_injected > 0 and result.upstage_client_retries > 0
    assert result.bulk_item_faults_injected > 0 and result.batch_item_failures > 0
    assert result.duplicates_sent > 0 and result.redeliveries > 0
    assert result.crashes_mid_batch + result.lost_responses > 0
    # The indexer's logs (Powertools JSON on stdout, at INFO) hold neither the key nor text.
    assert out.count('"level":"INFO"') > 0
    assert UPSTAGE_KEY not in out + err
    assert "Marker k" not in out + err


def test_the_check_catches_ignored_ordering(monkeypatch: pytest.MonkeyPatch, figures: Recorder,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    """Negative control: with the sequencer check disabled, reordered deliveries must leave the
    index different from the bucket, and the check must say so."""
    monkeypatch.setattr(ChangeMarker, "is_newer_than", lambda self, other: True)
    result = run_chaos(ChaosConfig(ops=150, keys=12, seed=SEED, upstage_fault_rate=0.0,
                                   bulk_item_fault_rate=0.0, crash_rate=0.0,
                                   lost_response_rate=0.0, max_delivery_delay_ticks=12))
    capfd.readouterr()
    content = [m for m in result.mismatches if "sequencer" not in m]
    figures(mismatches_without_ordering=len(result.mismatches), examples=content[:3])
    assert content  # e.g. a live document deleted by a stale ObjectRemoved event
