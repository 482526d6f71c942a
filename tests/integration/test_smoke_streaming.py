"""``scripts/smoke_test.py --streaming`` against the real app (offline provider) over HTTP: the
checks the deploy workflow runs on the streaming function, the bearer key and the playground."""

from __future__ import annotations

from pathlib import Path

import pytest
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.settings import Settings

from scripts import smoke_test as st
from tests.fakes.live_server import serve


def test_streaming_checks_pass_against_the_real_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    container = Container(Settings(_env_file=None, embedding_dimensions=64, rag_data_dir=tmp_path))
    with serve(create_app(lambda: container)) as url:
        st.run(st.ApiClient(url + "/", "any-key", timeout=30), "run-1", streaming=True,
               query_attempts=1, retry_delay=0.1)
    out = capsys.readouterr().out
    assert "ok   POST /v1/query (stream)" in out
    assert "ok   POST /v1/chat/completions with a bearer key: cited" in out
    assert "ok   GET /playground without a key" in out
    assert "ok   DELETE" in out


def test_a_truncated_stream_fails() -> None:
    events = st.sse_events('event: citations\ndata: {"citations": []}\n\nevent: delta\ndata: {"text": "x"}\n\n')
    assert [name for name, _ in events] == ["citations", "delta"]
