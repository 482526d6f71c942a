"""Shared fixtures of the reliability suite and the figures it reports.

Every test records what it measured with the ``figures`` fixture; the figures are printed in
pytest's terminal summary (also without ``-s``) and written as JSON to the file named by
``RAG_FIGURES_FILE`` when it is set.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Recorder = Callable[..., None]
_FIGURES: dict[str, dict[str, Any]] = {}


def env_int(name: str, default: int) -> int:
    """An integer from the environment (the longer variants are chosen this way)."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Recorder:
    """``figures(name=value, ...)`` records figures under the current test's name."""
    def record(**values: Any) -> None:
        _FIGURES.setdefault(request.node.name, {}).update(values)

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures")
    for test, values in _FIGURES.items():
        terminalreporter.write_line(f"{test}:")
        for name, value in values.items():
            shown = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
            terminalreporter.write_line(f"    {name}: {shown}")
    target = os.environ.get("RAG_FIGURES_FILE")
    if target:
        Path(target).write_text(json.dumps(_FIGURES, indent=2, sort_keys=True, default=str) + "\n",
                                encoding="utf-8")
