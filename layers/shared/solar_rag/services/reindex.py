"""Re-embedding without downtime: rebuild the live corpus into a target index, then swap.

The use case only: it reads the live documents and their sources of truth (``LiveCorpus``),
writes the target through the indexing service (``TargetIndexing``: the current parser,
chunker and embedder, with their rate limits), and keeps a progress record (``Progress``:
which document is in the target, built from which live version), so a run killed half-way
continues where it stopped. The stores' adapters do the physical part (new file or index,
the atomic swap, rollback; ``adapters/local_store/reindex.py``,
``adapters/opensearch/reindex.py``).

Writes that reach the live index while the target is built are not lost: every pass
compares the live registry with the progress record and rebuilds what changed (and removes
what was deleted); passes repeat until one finds nothing, and the last one runs while the
live store takes no writes, right before the swap (docs/decisions.md, "Re-embedding").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from solar_rag.domain import Change, DocumentStatus, Outcome, SourceDocument, Upsert
from solar_rag.errors import DocumentNotFound, RagError
from solar_rag.services.indexing import groups_by_size

logger = logging.getLogger("solar_rag.reindex")

LOAD_BATCH = 64
"""Documents whose sources are read before their groups are indexed."""
MAX_PASSES = 5
"""Catch-up passes before the swap: each rebuilds what changed during the previous one."""


@dataclass(frozen=True, slots=True)
class LiveDocument:
    id: str
    version: str | None
    """The live registry's content hash (what the live index holds of it)."""
    status: DocumentStatus
    chunks: int


class LiveCorpus(Protocol):
    def documents(self) -> Iterable[LiveDocument]:
        """Every live registry record except tombstones."""
        ...

    def source(self, document: LiveDocument) -> tuple[SourceDocument, str | None] | None:
        """The document as submitted, with the live version it is (None: unknown); None
        when there is no source of truth for it."""
        ...


class TargetIndexing(Protocol):
    """The indexing service writing the target (one instance, built by the caller)."""

    def apply(self, changes: Sequence[Change]) -> list[Outcome]: ...

    def delete(self, document_id: str) -> Outcome: ...


class Progress(Protocol):
    def built(self) -> dict[str, str]:
        """Document id -> live version the target copy was built from."""
        ...

    def mark(self, document_id: str, version: str) -> None: ...

    def forget(self, document_id: str) -> None: ...

    def target_documents(self) -> set[str]:
        """Ids the target's registry holds (live, not tombstones)."""
        ...


ProgressCallback = Callable[[int, int, str], None]


@dataclass(slots=True)
class PassReport:
    rebuilt: int = 0
    unchanged: int = 0
    """Already in the target as it is live (a resumed run, or a rollback's unchanged ones)."""
    deleted: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def work(self) -> int:
        return self.rebuilt + self.deleted + len(self.failed)


@dataclass(slots=True)
class ReindexReport:
    documents: int = 0
    rebuilt: int = 0
    unchanged: int = 0
    already_built: int = 0
    """Documents the progress record showed done when the run started (a resumed run)."""
    deleted: int = 0
    passes: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    swapped: bool = False
    detail: dict[str, object] = field(default_factory=dict)


class Reindexer:
    def __init__(self, corpus: LiveCorpus, target: TargetIndexing, progress: Progress, *,
                 on_progress: ProgressCallback | None = None) -> None:
        self._corpus = corpus
        self._target = target
        self._progress = progress
        self._on_progress = on_progress or (lambda done, total, label: None)

    def converge(self, report: ReindexReport, *, max_passes: int = MAX_PASSES) -> PassReport:
        """Passes until one has nothing to do (or ``max_passes``); the last pass's report."""
        last = PassReport()
        for _ in range(max_passes):
            last = self.run_pass(report)
            if last.rebuilt == 0 and last.deleted == 0:
                break
        return last

    def run_pass(self, report: ReindexReport) -> PassReport:
        """One comparison of the live corpus with the target; rebuilds and removes the
        differences. ``report`` accumulates across passes."""
        result = PassReport()
        report.passes += 1
        # What the live index holds: a record without a version (never indexed: failed or
        # queued at its first write) has nothing there to carry over.
        live = [doc for doc in self._corpus.documents()
                if doc.status != DocumentStatus.DELETED and doc.version is not None]
        report.documents = len(live)
        built = self._progress.built()
        todo = [doc for doc in live if built.get(doc.id) != doc.version]
        done = len(live) - len(todo)
        if report.passes == 1:
            report.already_built = done
        self._on_progress(done, len(live), f"pass {report.passes}")
        for start in range(0, len(todo), LOAD_BATCH):
            batch = todo[start:start + LOAD_BATCH]
            self._rebuild(batch, result)
            done += len(batch)
            self._on_progress(done, len(live), batch[-1].id)
        live_ids = {doc.id for doc in live}
        for document_id in sorted((self._progress.target_documents() | set(built)) - live_ids):
            try:
                self._target.delete(document_id)
            except DocumentNotFound:
                pass
            except RagError as error:
                result.failed[document_id] = f"could not be removed: {error.message}"
                continue
            self._progress.forget(document_id)
            result.deleted += 1
        report.rebuilt += result.rebuilt
        report.unchanged += result.unchanged
        report.deleted += result.deleted
        report.failed = dict(result.failed)  # a pass retries every document not built yet
        return result

    def _rebuild(self, batch: Sequence[LiveDocument], result: PassReport) -> None:
        loaded: list[tuple[SourceDocument, str | None]] = []
        for doc in batch:
            try:
                found = self._corpus.source(doc)
            except RagError as error:
                result.failed[doc.id] = f"its source could not be read: {error.message}"
                continue
            if found is None:
                if doc.chunks > 0 or doc.status == DocumentStatus.INDEXED:
                    result.failed[doc.id] = (
                        "no source of truth to index it again from (it was indexed before "
                        "sources were kept, or never reached the documents bucket): send it "
                        "again, or pass --force to swap without it")
                continue
            loaded.append(found)
        for group in groups_by_size([Upsert(source) for source, _ in loaded]):
            members = [loaded[i] for i in group]
            try:
                outcomes = self._target.apply([Upsert(source) for source, _ in members])
            except RagError as error:
                outcomes = [Outcome(source.id, "failed", error=error) for source, _ in members]
            for (source, version), outcome in zip(members, outcomes, strict=True):
                if outcome.error is not None:
                    result.failed[source.id] = (outcome.error.message if isinstance(
                        outcome.error, RagError) else str(outcome.error))
                    continue
                if version is not None:
                    self._progress.mark(source.id, version)
                if outcome.status == "unchanged":
                    result.unchanged += 1
                else:
                    result.rebuilt += 1
