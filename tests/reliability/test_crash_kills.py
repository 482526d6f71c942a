"""Crash suite (issue 13): `rag serve` and `rag index` killed with SIGKILL mid-write, checked
after every restart. See ``tests/reliability/crash.py``.

CI: 120 kills of `rag serve` and 80 of `rag index` (seed 13). Longer:
``RAG_CRASH_SERVE_KILLS=1000 RAG_CRASH_INDEX_KILLS=500`` or
``python -m tests.reliability.crash --serve-kills 1000 --index-kills 500 --seed N``.
"""

from __future__ import annotations

from pathlib import Path

from tests.reliability.conftest import Recorder, env_int
from tests.reliability.crash import CrashConfig, run_crash_suite

SERVE_KILLS = env_int("RAG_CRASH_SERVE_KILLS", 120)
INDEX_KILLS = env_int("RAG_CRASH_INDEX_KILLS", 80)
SEED = env_int("RAG_CRASH_SEED", 13)


def test_killed_writers_never_leave_registry_and_store_disagreeing(tmp_path: Path,
                                                                   figures: Recorder) -> None:
    result = run_crash_suite(CrashConfig(SERVE_KILLS, INDEX_KILLS, SEED), tmp_path)
    figures(**result.as_dict())
    assert result.mismatches == [], result.mismatches[:10]
    assert result.kills == SERVE_KILLS + INDEX_KILLS
    assert result.checks == result.kills
    # The kills landed on both sides of the answer (seeded, but timing decides the split).
    assert result.killed_before_answer > result.kills // 4
    assert result.answered_before_kill > 0
