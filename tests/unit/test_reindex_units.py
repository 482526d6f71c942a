"""Pieces of `rag reindex` (issue 16 B) on their own: the space both embedders describe, the
live-file pointer, the progress bar, and the use case's failure paths with fakes."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from solar_rag import errors
from solar_rag.adapters.local_store.generations import (
    Generations,
    RetiredCheck,
    live_database,
    new_generation,
    read_generations,
    swap,
    unretire,
    write_generations,
)
from solar_rag.composition import Container
from solar_rag.domain import Change, DocumentStatus, Outcome, SourceDocument, Upsert
from solar_rag.embedding_space import EmbeddingSpace, configured_space
from solar_rag.errors import DocumentNotFound, UpstreamError
from solar_rag.reindexing import ProgressBar
from solar_rag.services.reindex import LiveDocument, Reindexer, ReindexReport
from solar_rag.settings import Settings


@pytest.mark.parametrize("key", [None, "up-test-key"])
def test_configured_space_is_the_embedders_own(key: str | None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSTAGE_SECRET_ID", raising=False)
    settings = Settings(_env_file=None, upstage_api_key=key, embedding_dimensions=40,
                        chunk_size_tokens=300, chunk_overlap_tokens=20)
    container = Container(settings)
    assert configured_space(settings) == container.embedding_space
    assert configured_space(settings).chunker == "chunker-v1:300:20"


def test_space_round_trips_through_meta_and_rejects_garbage() -> None:
    space = EmbeddingSpace("upstage:m:8", 8, "chunker-v1:400:60")
    assert EmbeddingSpace.from_meta(space.as_meta()) == space
    garbage: object
    for garbage in (None, [], {"embedder": "x"}, {"embedder": "x", "dimensions": "many",
                                                    "chunker": "c"}):
        assert EmbeddingSpace.from_meta(garbage) is None


# -- the live-file pointer ------------------------------------------------------------------

def test_pointer_defaults_swaps_and_retires(tmp_path: Path) -> None:
    assert live_database(tmp_path) == tmp_path / "rag.sqlite3"
    assert new_generation(tmp_path) == "gen-2/rag.sqlite3"
    (tmp_path / "gen-7").mkdir()
    assert new_generation(tmp_path) == "gen-8/rag.sqlite3"
    (tmp_path / "rag.sqlite3").touch()
    old_check = RetiredCheck(tmp_path / "rag.sqlite3")
    new_check = RetiredCheck(tmp_path / "gen-8" / "rag.sqlite3")
    assert not old_check() and not new_check()

    swapped = swap(tmp_path, "gen-8/rag.sqlite3")
    assert (swapped.live, swapped.previous, swapped.retired) == (
        "gen-8/rag.sqlite3", "rag.sqlite3", ("rag.sqlite3",))
    assert live_database(tmp_path) == tmp_path / "gen-8" / "rag.sqlite3"
    assert old_check() and not new_check()

    back = swap(tmp_path, "rag.sqlite3")  # a rollback: the restored file is not retired
    assert back.retired == ("gen-8/rag.sqlite3",)
    assert not old_check() and new_check()
    unretire(tmp_path, "gen-8/rag.sqlite3")
    assert not new_check()
    assert not list(tmp_path.glob(".live-*"))  # no temporary file left behind


@pytest.mark.parametrize("body", ['{"live": "../elsewhere.sqlite3"}', '{"live": "/etc/x"}',
                                  "not json", '{"previous": "x"}'])
def test_a_bad_pointer_is_a_clear_configuration_error(tmp_path: Path, body: str) -> None:
    (tmp_path / "live.json").write_text(body, encoding="utf-8")
    with pytest.raises(errors.NotConfigured, match=r"live\.json"):
        read_generations(tmp_path)


def test_pointer_round_trip(tmp_path: Path) -> None:
    generations = Generations("gen-3/rag.sqlite3", "gen-2/rag.sqlite3",
                              ("rag.sqlite3", "gen-2/rag.sqlite3"), "2026-12-06T00:00:00+00:00")
    write_generations(tmp_path, generations)
    assert read_generations(tmp_path) == generations


def test_progress_bar_draws_one_line_and_ends_it() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, width=10)
    bar(0, 4, "pass 1")
    bar(4, 4, "docs/a.md")
    bar.end()
    text = out.getvalue()
    assert text.startswith("\r[----------] 0/4 pass 1") and "\r[##########] 4/4 docs/a.md" in text
    assert text.endswith("\n")


# -- the use case with fakes -----------------------------------------------------------------

class Corpus:
    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = dict(docs)
        self.unreadable: set[str] = set()
        self.no_source: set[str] = set()

    def documents(self) -> Iterable[LiveDocument]:
        return [LiveDocument(i, v, DocumentStatus.INDEXED, 1) for i, v in sorted(self.docs.items())]

    def source(self, document: LiveDocument) -> tuple[SourceDocument, str | None] | None:
        if document.id in self.unreadable:
            raise UpstreamError("bucket unreachable")
        if document.id in self.no_source:
            return None
        return SourceDocument(id=document.id, text=f"text of {document.id}"), document.version


class Target:
    def __init__(self) -> None:
        self.indexed: list[str] = []
        self.deleted: list[str] = []
        self.refuse: set[str] = set()
        self.undeletable: set[str] = set()

    def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        results: list[Outcome] = []
        for change in changes:
            assert isinstance(change, Upsert)
            doc = change.document
            if doc.id in self.refuse:
                results.append(Outcome(doc.id, "failed", error=errors.InvalidInput(f"{doc.id} refused")))
            else:
                self.indexed.append(doc.id)
                results.append(Outcome(doc.id, "indexed", 1))
        return results

    def delete(self, document_id: str) -> Outcome:
        if document_id in self.undeletable:
            raise errors.VectorStoreError("store down")
        if document_id not in self.indexed:
            raise DocumentNotFound(document_id)
        self.deleted.append(document_id)
        return Outcome(document_id, "deleted")


class Progress:
    def __init__(self) -> None:
        self.marks: dict[str, str] = {}

    def built(self) -> dict[str, str]:
        return dict(self.marks)

    def mark(self, document_id: str, version: str) -> None:
        self.marks[document_id] = version

    def forget(self, document_id: str) -> None:
        self.marks.pop(document_id, None)

    def target_documents(self) -> set[str]:
        return set(self.marks)


def test_failures_are_reported_per_document_and_retried_next_pass() -> None:
    corpus = Corpus({"a": "1", "b": "1", "c": "1", "d": "1"})
    corpus.unreadable, corpus.no_source = {"b"}, {"c"}
    target, progress = Target(), Progress()
    target.refuse = {"d"}
    reindexer = Reindexer(corpus, target, progress)
    report = ReindexReport()
    reindexer.converge(report)
    assert set(report.failed) == {"b", "c", "d"}
    assert "could not be read: bucket unreachable" in report.failed["b"]
    assert "no source of truth" in report.failed["c"] and report.failed["d"] == "d refused"
    assert progress.marks == {"a": "1"} and target.indexed == ["a"]

    corpus.unreadable, corpus.no_source, target.refuse = set(), set(), set()
    reindexer.run_pass(report)
    assert not report.failed and progress.marks == dict.fromkeys("abcd", "1")
    assert target.indexed.count("a") == 1  # done documents are not embedded again


def test_changed_and_deleted_documents_are_caught_up() -> None:
    corpus = Corpus({"a": "1", "b": "1"})
    target, progress = Target(), Progress()
    reindexer = Reindexer(corpus, target, progress)
    report = ReindexReport()
    reindexer.run_pass(report)
    corpus.docs["a"] = "2"  # written meanwhile
    del corpus.docs["b"]  # deleted meanwhile
    corpus.docs["c"] = "1"  # added meanwhile
    last = reindexer.run_pass(report)
    assert (last.rebuilt, last.deleted) == (2, 1) and target.deleted == ["b"]
    assert progress.marks == {"a": "2", "c": "1"}
    assert reindexer.run_pass(report).work == 0


def test_a_removal_that_fails_is_reported_and_kept_for_the_next_pass() -> None:
    corpus = Corpus({"a": "1"})
    target, progress = Target(), Progress()
    reindexer = Reindexer(corpus, target, progress)
    report = ReindexReport()
    reindexer.run_pass(report)
    del corpus.docs["a"]
    target.undeletable = {"a"}
    reindexer.run_pass(report)
    assert "could not be removed: store down" in report.failed["a"] and "a" in progress.marks
    target.undeletable = set()
    reindexer.run_pass(report)
    assert not report.failed and not progress.marks
