"""`rag reindex` as users run it (issue 16 B): a `rag serve` process answers a stream of
searches over HTTP while a `rag reindex` process rebuilds its store in another embedding
space and swaps; not one search fails. The server, restarted with the new settings, serves
the new store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from solar_rag.composition import Container
from solar_rag.domain import SourceDocument
from solar_rag.settings import Settings

from tests.fakes.rag_serve import rag_serve

DOCUMENTS = 150


def test_a_served_store_is_reindexed_without_a_failed_query(tmp_path: Path) -> None:
    data = tmp_path / "data"
    container = Container(Settings(_env_file=None, rag_data_dir=data, embedding_dimensions=64))
    container.indexing_service.index_many([
        SourceDocument(id=f"n{n}.md", content_type="text/markdown",
                       text=f"# Note {n}\n\n" + "\n\n".join(
                           f"Line {p}: lantern{n} glows over bridge{p}." for p in range(12)))
        for n in range(DOCUMENTS)])
    old_env = {"RAG_DATA_DIR": str(data), "EMBEDDING_DIMENSIONS": "64"}
    new_env = {"RAG_DATA_DIR": str(data), "EMBEDDING_DIMENSIONS": "96"}
    (tmp_path / "serve").mkdir()
    statuses: list[int] = []
    stop = threading.Event()
    with rag_serve(old_env, cwd=tmp_path / "serve") as url:
        def load() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                while not stop.is_set():
                    response = client.post("/v1/search", json={"query": "lantern42 bridge3"})
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        assert response.json()["results"][0]["document_id"] == "n42.md"

        runner = threading.Thread(target=load)
        runner.start()
        try:
            environment = {k: v for k, v in os.environ.items()
                           if not k.startswith(("UPSTAGE_", "RAG_", "EMBEDDING_", "VECTOR_"))}
            run = subprocess.run([sys.executable, "-m", "solar_rag.cli", "reindex"],
                                 env={**environment, **new_env}, cwd=tmp_path / "serve",
                                 capture_output=True, text=True, timeout=300, check=False)
            during = len(statuses)
            while len(statuses) < during + 5:
                stop.wait(0.01)
        finally:
            stop.set()
            runner.join()
        assert run.returncode == 0, run.stderr[-2000:]
        summary = json.loads(run.stdout)
        assert summary["swapped"] and summary["rebuilt"] == DOCUMENTS
        assert f"{DOCUMENTS}/{DOCUMENTS}" in run.stderr  # the progress bar
        assert during > 0 and len(statuses) > during and set(statuses) == {200}
        refused = httpx.post(f"{url}/v1/documents", timeout=30,
                             json={"documents": [{"id": "late", "text": "too late"}]})
        assert refused.status_code == 409 and "rag reindex" in refused.json()["detail"]

    with rag_serve(new_env, cwd=tmp_path / "serve") as url:
        found = httpx.post(f"{url}/v1/search", json={"query": "lantern42 bridge3"}, timeout=30)
        assert found.status_code == 200 and found.json()["results"][0]["document_id"] == "n42.md"
        added = httpx.post(f"{url}/v1/documents", timeout=30,
                           json={"documents": [{"id": "late", "text": "now it is taken"}]})
        assert added.status_code == 200
    with rag_serve(old_env, cwd=tmp_path / "serve") as url:  # old settings: refused, clearly
        stale = httpx.post(f"{url}/v1/search", json={"query": "lantern42"}, timeout=30)
        assert stale.status_code == 409 and "rag reindex" in stale.json()["detail"]
