"""``rag reindex``: wires the re-embedding use case (``services/reindex.py``) to the stores.

The target is written by the same indexing service as every other write (the current
parser, chunker and embedder, the same Upstage client and rate limiter), built once by the
composition root with the target store and registry in place of the live ones: that is the
one place this module touches indexing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from solar_rag.composition import Container
from solar_rag.errors import SpaceMismatch
from solar_rag.ports import DocumentRegistry, VectorStore
from solar_rag.services.reindex import Reindexer, ReindexReport, TargetIndexing
from solar_rag.settings import Settings


def target_indexing(container: Container, store: VectorStore,
                    registry: DocumentRegistry) -> TargetIndexing:
    """The indexing service writing ``store``/``registry`` (the one call site)."""
    return Container(container.settings, embedder=container.embedder, store=store,
                     registry=registry).indexing_service


class ProgressBar:
    """``[#####-----] done/total label`` on one line of stderr, at most ten times a second."""

    def __init__(self, out: TextIO = sys.stderr, *, width: int = 30) -> None:
        self._out = out
        self._width = width
        self._last = 0.0

    def __call__(self, done: int, total: int, label: str) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        filled = int(self._width * done / total) if total else self._width
        bar = "#" * filled + "-" * (self._width - filled)
        self._out.write(f"\r[{bar}] {done}/{total} {label[:50]:<50}")
        self._out.flush()

    def end(self) -> None:
        self._out.write("\n")
        self._out.flush()


def run_reindex(settings: Settings, *, rollback: bool = False, force: bool = False,
                on_progress: Callable[[int, int, str], None] | None = None) -> ReindexReport:
    container = Container(settings)
    if settings.vector_store == "opensearch":
        from solar_rag.adapters.opensearch.reindex import reindex_opensearch

        return reindex_opensearch(container, rollback=rollback, force=force,
                                  on_progress=on_progress)
    return _reindex_local(container, rollback=rollback, force=force, on_progress=on_progress)


def reindex_status(settings: Settings) -> dict[str, Any]:
    """``rag reindex --status``: the unfinished OpenSearch run (shared record), if any."""
    if settings.vector_store != "opensearch":
        from solar_rag.errors import NotAvailableHere

        raise NotAvailableHere("`rag reindex --status` reports OpenSearch runs; a local run's "
                               "record is RAG_DATA_DIR/reindex.json and its gen-<n> directory")
    from solar_rag.adapters.opensearch.reindex import reindex_status as status

    return status(Container(settings))


def _reindex_local(container: Container, *, rollback: bool, force: bool,
                   on_progress: Callable[[int, int, str], None] | None) -> ReindexReport:
    from solar_rag.adapters.local_store import LocalDocumentRegistry, LocalVectorStore
    from solar_rag.adapters.local_store import reindex as local
    from solar_rag.adapters.local_store.generations import unretire

    space = container.embedding_space
    data_dir = container.settings.rag_data_dir
    run = local.plan_run(data_dir, rollback=rollback)
    if rollback:
        unretire(data_dir, run.target)

    def open_target() -> LocalVectorStore:
        return LocalVectorStore(run.target_path, space=space.embedder,
                                dimensions=space.dimensions, chunker=space.chunker)

    try:
        store = open_target()
    except SpaceMismatch as error:
        if not run.resumed:
            if rollback:
                raise SpaceMismatch(f"cannot roll back: {error.message}. Roll back with the "
                                    "settings the previous store was built with.") from error
            raise
        run = local.start_afresh(run)  # the interrupted run was for other settings
        store = open_target()
    registry = LocalDocumentRegistry(run.target_path)
    corpus = local.LocalCorpus(run.live_path)
    progress = local.SqliteProgress(run.target_path, registry)
    try:
        if rollback:
            progress.clear()
        report = ReindexReport(detail={"store": "local", "live": run.live, "target": run.target,
                                       "resumed": run.resumed, "rollback": rollback,
                                       "space": space.key})
        reindexer = Reindexer(corpus, target_indexing(container, store, registry), progress,
                              on_progress=on_progress)
        reindexer.converge(report)
        with local.writes_paused(run.live_path):
            reindexer.run_pass(report)  # what was written since the last pass
            if report.failed and not force:
                return report
            local.make_live(run)
            report.swapped = True
        return report
    finally:
        progress.close()
        corpus.close()
        registry.close()
        store.close()
