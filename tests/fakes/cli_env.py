"""A ``rag`` command run in its own directory, data dir and offline settings (CLI tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from solar_rag.settings import get_settings


@contextmanager
def isolated_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[None]:
    """Offline (no Upstage key or secret), 256-d embeddings, data under ``tmp_path/data``,
    plus ``env``; the settings cache is cleared before and after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    monkeypatch.delenv("UPSTAGE_SECRET_ID", raising=False)
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "256")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()
