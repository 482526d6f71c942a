"""`rag reindex` killed with SIGKILL half-way continues where it stopped (issue 16 B).

A real ``rag reindex`` child process (its own interpreter) is killed once its progress bar
shows documents done; the live store must be untouched (pointer, documents), the progress
record must hold what was finished, and the next run must resume into the same target,
embed only what is left, and swap.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from solar_rag.adapters.local_store.generations import read_generations
from solar_rag.composition import Container
from solar_rag.domain import SearchMode, SourceDocument
from solar_rag.settings import Settings

from tests.reliability.conftest import Recorder

DOCUMENTS = 400
ROOT = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(rb"\] (\d+)/(\d+) ")


def settings(data: Path, dimensions: int) -> Settings:
    return Settings(_env_file=None, rag_data_dir=data, embedding_dimensions=dimensions)


def populate(data: Path) -> None:
    container = Container(settings(data, 64))
    docs = [SourceDocument(id=f"d{n:04}.md", content_type="text/markdown",
                           text=f"# Note {n}\n\n" + "\n\n".join(
                               f"Line {p}: token{n} walks with marker{p} through the valley."
                               for p in range(10)))
            for n in range(DOCUMENTS)]
    for start in range(0, DOCUMENTS, 100):
        container.indexing_service.index_many(docs[start:start + 100])


def reindex_process(data: Path) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("UPSTAGE_API_KEY", "UPSTAGE_SECRET_ID", "VECTOR_STORE")}
    env.update(RAG_DATA_DIR=str(data), EMBEDDING_DIMENSIONS="96")
    return subprocess.Popen([sys.executable, "-m", "solar_rag.cli", "reindex"], cwd=data.parent,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_after(process: subprocess.Popen[bytes], done_at_least: int) -> int:
    """SIGKILL once the progress bar shows ``done_at_least`` documents of the first pass
    done; the count it showed last."""
    assert process.stderr is not None
    seen = bytearray()
    shown = 0
    while True:
        chunk = os.read(process.stderr.fileno(), 4096)
        if not chunk:
            raise AssertionError(f"reindex ended before it could be killed: {bytes(seen)[-500:]!r}")
        seen.extend(chunk)
        counts = PROGRESS.findall(bytes(seen))
        if counts:
            shown = int(counts[-1][0])
            if done_at_least <= shown < DOCUMENTS:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                return shown


def progress_rows(target: Path) -> int:
    with sqlite3.connect(target) as conn:
        (count,) = conn.execute("SELECT count(*) FROM reindex_progress").fetchone()
    return int(count)


@pytest.mark.timeout(600)
def test_a_killed_reindex_resumes_and_swaps(tmp_path: Path, figures: Recorder) -> None:
    data = tmp_path / "data"
    populate(data)
    marked: list[int] = []
    for threshold in (64, 200):
        process = reindex_process(data)
        try:
            shown = kill_after(process, threshold)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        assert read_generations(data).live == "rag.sqlite3"  # nothing swapped
        target = data / "gen-2" / "rag.sqlite3"  # every run continues the same target
        marked.append(progress_rows(target))
        assert shown <= marked[-1] < DOCUMENTS
        old = Container(settings(data, 64))  # the live store is whole and still serves
        assert len(old.registry.list(limit=1000)[0]) == DOCUMENTS
    assert marked[0] < marked[1]

    process = reindex_process(data)
    out_thread_result: list[bytes] = []
    reader = threading.Thread(target=lambda: out_thread_result.append(
        process.stderr.read() if process.stderr else b""))
    reader.start()
    out = process.stdout.read() if process.stdout else b""
    process.wait(timeout=300)
    reader.join()
    assert process.returncode == 0, out_thread_result[0][-2000:]
    summary = out.decode()
    assert '"swapped": true' in summary and '"resumed": true' in summary
    rebuilt = int(re.search(r'"rebuilt": (\d+)', summary).group(1))  # type: ignore[union-attr]
    unchanged = int(re.search(r'"unchanged": (\d+)', summary).group(1))  # type: ignore[union-attr]
    already = int(re.search(r'"already_built": (\d+)', summary).group(1))  # type: ignore[union-attr]
    # what the killed runs finished is not embedded again
    assert already == marked[-1] and rebuilt + unchanged + already == DOCUMENTS
    assert rebuilt <= DOCUMENTS - marked[-1]
    figures(documents=DOCUMENTS, done_before_kills=marked, rebuilt_after_resume=rebuilt)

    generations = read_generations(data)
    assert generations.live == "gen-2/rag.sqlite3" and not (data / "reindex.json").exists()
    new = Container(settings(data, 96))
    assert len(new.registry.list(limit=1000)[0]) == DOCUMENTS
    hits = new.search_service.search("token123", top_k=1, mode=SearchMode.KEYWORD, filters={})
    assert hits[0].chunk.document_id == "d0123.md"
