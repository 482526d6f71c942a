"""The change pipeline: changes in, one outcome per change out (status and error together),
from the indexing service to the SQS edge's batch item failures."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from solar_rag.domain import (
    ChangeMarker,
    DocumentStatus,
    Metadata,
    Outcome,
    Rejection,
    Removal,
    SourceDocument,
    Upsert,
)
from solar_rag.errors import (
    ConcurrentUpdate,
    DocumentNotFound,
    InvalidInput,
    NotConfigured,
    UnsupportedDocument,
    UpstreamError,
    UpstreamRejected,
    VectorStoreError,
)
from solar_rag.lambda_edge import runtime
from solar_rag.parsing.sources import read_document
from solar_rag.services.indexing import IndexingService
from solar_rag.services.s3_ingestion import ObjectChange
from solar_rag.settings import get_settings

from tests.fakes import events
from tests.fakes.memory import FakeEmbedder, MemoryRegistry, MemoryStore
from tests.unit.test_indexing_service import ParagraphChunker, parse


@dataclass
class Parts:
    store: MemoryStore
    registry: MemoryRegistry
    embedder: FakeEmbedder
    service: IndexingService

    def texts(self, document_id: str) -> list[str]:
        return [c.chunk.text for c in self.store.chunks.values() if c.chunk.document_id == document_id]

    def status(self, document_id: str) -> DocumentStatus | None:
        record = self.registry.get(document_id)
        return record.status if record else None


@pytest.fixture
def parts() -> Parts:
    store, registry, embedder = MemoryStore(), MemoryRegistry(), FakeEmbedder()
    return Parts(store, registry, embedder,
                 IndexingService(parse=parse, chunker=ParagraphChunker(), chunker_signature="p",
                                 embedder=embedder, store=store, registry=registry))


def doc(document_id: str, text: str) -> SourceDocument:
    return SourceDocument(id=document_id, text=text, source=f"s3://b/{document_id}")


# --- outcomes -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "error"), [("failed", None), ("deferred", None),
                                               ("indexed", InvalidInput("x")),
                                               ("skipped", UpstreamError("x"))])
def test_an_outcome_has_an_error_exactly_when_it_failed_or_is_deferred(
        status: Any, error: Exception | None) -> None:
    with pytest.raises(ValueError, match="error"):
        Outcome("a", status, error=error)


@pytest.mark.parametrize(("outcome", "settled"), [
    (Outcome("a", "indexed", 2), True),
    (Outcome("a", "skipped"), True),
    (Outcome("a", "failed", error=InvalidInput("no text")), True),
    (Outcome("a", "failed", error=UpstreamRejected("Upstage refused the input")), True),
    (Outcome("a", "failed", error=UpstreamError("HTTP 503")), False),
    (Outcome("a", "failed", error=VectorStoreError("bulk failed")), False),
    (Outcome("a", "failed", error=NotConfigured("no key")), False),
    (Outcome("a", "failed", error=RuntimeError("a bug")), False),
    (Outcome("a", "deferred", error=ConcurrentUpdate("busy")), False),
    (Outcome("a", "deferred", error=UnsupportedDocument("parse pending")), False),
])
def test_settled_means_no_retry_can_change_the_outcome(outcome: Outcome, settled: bool) -> None:
    assert outcome.settled is settled


def test_result_raises_the_outcomes_error() -> None:
    assert Outcome("a", "unchanged", 1).result() == Outcome("a", "unchanged", 1)
    with pytest.raises(DocumentNotFound, match="gone"):
        Outcome("a", "failed", error=DocumentNotFound("gone")).result()


# --- the service: one batch of mixed changes ----------------------------------------------------

def test_a_mixed_batch_takes_each_lock_once_in_id_order_and_writes_once(parts: Parts) -> None:
    parts.service.apply([Upsert(doc("b", "bravo")), Upsert(doc("c", "charlie"))])
    parts.store.batch_sizes.clear()
    taken: list[str] = []
    original = parts.registry.locked

    def spy(document_id: str) -> AbstractContextManager[None]:
        taken.append(document_id)
        return original(document_id)

    parts.registry.locked = spy  # type: ignore[method-assign, assignment]
    outcomes = parts.service.apply([
        Upsert(doc("d", "delta\n\nmore")), Removal("b", ChangeMarker("05")),
        Rejection("c", "unsupported file type .exe", ChangeMarker("06"), "s3://b/c"),
        Upsert(doc("a", "alpha"))])
    assert [(o.id, o.status, o.chunks) for o in outcomes] == [
        ("d", "indexed", 2), ("b", "deleted", 0), ("c", "failed", 0), ("a", "indexed", 1)]
    assert isinstance(outcomes[2].error, UnsupportedDocument)
    assert str(outcomes[2].error) == "unsupported file type .exe"
    assert taken == ["a", "b", "c", "d"]
    assert parts.store.batch_sizes == [2]
    assert parts.store.document_ids() == {"a", "d"}
    c = parts.registry.get("c")
    assert c is not None and c.status is DocumentStatus.FAILED and c.source == "s3://b/c"
    assert c.sequencer == "06" and c.error == "unsupported file type .exe"
    assert parts.status("b") is DocumentStatus.DELETED


def test_a_document_named_several_times_is_changed_in_order(parts: Parts) -> None:
    outcomes = parts.service.apply([
        Upsert(doc("x", "first")), Upsert(doc("y", "why")), Removal("x"),
        Upsert(doc("x", "third")), Removal("y")])
    assert [o.status for o in outcomes] == ["indexed", "indexed", "deleted", "indexed", "deleted"]
    assert parts.texts("x") == ["third"] and parts.texts("y") == []
    assert parts.store.batch_sizes == [2, 1]  # x and y together, then x again


def test_a_source_that_replaced_the_document_removes_it_when_it_cannot_be_indexed(
        parts: Parts) -> None:
    parts.service.apply([Upsert(doc("s", "old text")), Upsert(doc("h", "old text"))])
    parts.embedder.fail_with = UpstreamRejected("Upstage rejected the input (400)")
    replaced, submitted = parts.service.apply([
        Upsert(doc("s", "new text"), ChangeMarker("0A"), replaces=True),
        Upsert(doc("h", "new text"))])
    assert replaced.status == submitted.status == "failed"
    assert replaced.settled and submitted.settled
    assert parts.texts("s") == []  # the object is not searchable: neither is the old version
    assert parts.texts("h") == ["old text"]  # an HTTP request's failure keeps what was indexed
    s, h = parts.registry.get("s"), parts.registry.get("h")
    assert s is not None and s.status is DocumentStatus.FAILED and s.sequencer == "0A"
    assert h is not None and h.status is DocumentStatus.FAILED and h.chunks == 1
    assert s.error == h.error == "Upstage rejected the input (400)"


def test_a_passing_failure_keeps_the_old_version_even_of_a_replaced_source(parts: Parts) -> None:
    parts.service.apply([Upsert(doc("s", "old text"))])
    parts.embedder.fail_with = UpstreamError("Upstage answered 503")
    [outcome] = parts.service.apply([Upsert(doc("s", "new text"), ChangeMarker("0B"), replaces=True)])
    assert outcome.status == "failed" and not outcome.settled
    assert parts.texts("s") == ["old text"] and parts.status("s") is DocumentStatus.FAILED


def test_an_invalid_document_of_a_replaced_source_is_rejected_not_just_refused(parts: Parts) -> None:
    parts.service.apply([Upsert(doc("e.txt", "words")), Upsert(doc("f.txt", "words"))])
    rejected, refused = parts.service.apply([
        Upsert(doc("e.txt", "  \n"), ChangeMarker("01"), replaces=True),
        Upsert(doc("f.txt", "  \n"))])
    assert isinstance(rejected.error, InvalidInput) and isinstance(refused.error, InvalidInput)
    assert parts.status("e.txt") is DocumentStatus.FAILED and parts.texts("e.txt") == []
    assert parts.status("f.txt") is DocumentStatus.INDEXED and parts.texts("f.txt") == ["words"]


def test_a_busy_lock_defers_the_change_and_records_nothing(parts: Parts) -> None:
    @contextmanager
    def busy(document_id: str) -> Iterator[None]:
        if document_id == "held":
            raise ConcurrentUpdate(f"document {document_id!r} is being updated")
        yield

    parts.registry.locked = busy  # type: ignore[method-assign]
    held, free = parts.service.apply([Upsert(doc("held", "text")), Upsert(doc("free", "text"))])
    assert held.status == "deferred" and isinstance(held.error, ConcurrentUpdate)
    assert not held.settled and free.status == "indexed"
    assert parts.registry.get("held") is None and parts.texts("held") == []


def test_removals_of_unknown_documents(parts: Parts) -> None:
    [api] = parts.service.apply([Removal("nobody")])
    assert api.status == "failed" and isinstance(api.error, DocumentNotFound) and api.settled
    assert parts.registry.get("nobody") is None
    [event] = parts.service.apply([Removal("nobody", ChangeMarker("07"))])
    assert event.status == "deleted"  # the tombstone orders a late, older creation
    [late] = parts.service.apply([Upsert(doc("nobody", "resurrected?"), ChangeMarker("06"))])
    assert late.status == "skipped" and parts.texts("nobody") == []


def test_stale_removals_and_rejections_change_nothing(parts: Parts) -> None:
    parts.service.apply([Upsert(doc("k", "kept"), ChangeMarker("09"))])
    outcomes = parts.service.apply([Removal("k", ChangeMarker("08")),
                                    Rejection("k", "too big", ChangeMarker("07"))])
    assert [o.status for o in outcomes] == ["skipped", "skipped"]
    assert parts.texts("k") == ["kept"] and parts.status("k") is DocumentStatus.INDEXED


# --- one file reader, one sidecar parser ------------------------------------------------------------

def _loader(error: BaseException | None) -> Any:
    def load(data: bytes, filename: str, *, document_id: str, metadata: Metadata | None = None,
             source: str | None = None) -> SourceDocument:
        if error is not None:
            raise error
        return SourceDocument(id=document_id, text=data.decode(), source=source,
                              metadata=dict(metadata or {}))
    return load


def test_read_document_merges_the_sidecar() -> None:
    sidecar = json.dumps({"metadataAttributes": {"team": "hr", "year": 2026}}).encode()
    document = read_document(_loader(None), b"text", "a.txt", document_id="a.txt",
                             sidecar=sidecar, source="docs/a.txt")
    assert document.metadata == {"team": "hr", "year": 2026} and document.source == "docs/a.txt"


@pytest.mark.parametrize(("error", "sidecar", "expected", "message"), [
    (None, b'{"metadataAttributes": {"tags": ["x"]}}', InvalidInput,
     "invalid metadata sidecar a.txt.metadata.json: attribute 'tags' must be"),
    (None, b" " * (10 * 1024 + 1), InvalidInput, "larger than 10240 bytes"),
    (AttributeError("'NoneType' object has no attribute 'get'"), None, UnsupportedDocument,
     "the file could not be read (AttributeError)"),
    (RecursionError("maximum recursion depth exceeded"), None, UnsupportedDocument,
     "could not be read (RecursionError): it is nested too deeply"),
    (UnsupportedDocument("unsupported file type"), None, UnsupportedDocument, "unsupported file type"),
])
def test_every_way_a_file_cannot_be_read_is_its_own_error(
        error: BaseException | None, sidecar: bytes | None, expected: type[Exception],
        message: str) -> None:
    with pytest.raises(expected) as raised:
        read_document(_loader(error), b"text", "a.txt", document_id="a.txt", sidecar=sidecar,
                      source="a.txt")
    assert message in str(raised.value)


def test_rag_index_reads_sidecars_with_the_s3_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from solar_rag.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    monkeypatch.delenv("UPSTAGE_SECRET_ID", raising=False)
    get_settings.cache_clear()
    (tmp_path / "typed.md").write_text("Typed values.", encoding="utf-8")
    (tmp_path / "typed.md.metadata.json").write_text(json.dumps({"metadataAttributes": {
        "team": {"value": {"type": "STRING", "stringValue": "hr"}}}}), encoding="utf-8")
    (tmp_path / "listed.md").write_text("A list value.", encoding="utf-8")
    (tmp_path / "listed.md.metadata.json").write_text(
        '{"metadataAttributes": {"tags": ["a", "b"]}}', encoding="utf-8")
    try:
        assert main(["index", "typed.md", "listed.md"]) == 1
        out, err = capsys.readouterr()
        assert "indexed=1 unchanged=0 failed=1" in out
        assert "listed.md: invalid metadata sidecar listed.md.metadata.json" in err
        assert main(["documents", "show", "typed.md"]) == 0
        assert json.loads(capsys.readouterr().out)["metadata"] == {"team": "hr"}
    finally:
        get_settings.cache_clear()


# --- the SQS edge ---------------------------------------------------------------------------------

class _Ingestion:
    bucket = events.BUCKET

    def __init__(self, outcomes: Sequence[list[Outcome]]) -> None:
        self.outcomes = list(outcomes)
        self.applied: list[list[ObjectChange]] = []

    def apply(self, messages: Sequence[Sequence[ObjectChange]]) -> list[list[Outcome]]:
        self.applied = [list(m) for m in messages]
        return self.outcomes


def test_the_edge_redelivers_exactly_the_messages_with_an_unsettled_outcome(
        monkeypatch: pytest.MonkeyPatch) -> None:
    ingestion = _Ingestion([
        [Outcome("a.txt", "indexed", 1)],
        [Outcome("b.pdf", "deferred", error=UnsupportedDocument("parse pending"))],
        [Outcome("c.txt", "failed", error=InvalidInput("no text"))],
        [Outcome("d.txt", "indexed", 1), Outcome("e.txt", "failed", error=UpstreamError("503"))],
    ])

    @dataclass
    class Container:
        s3_ingestion: _Ingestion

    monkeypatch.setattr(runtime, "container", lambda: Container(ingestion))
    keys = ["a.txt", "b.pdf", "c.txt"]
    event = events.sqs_event(
        *[events.s3_notification(events.created(k, sequencer="01")) for k in keys],
        "not an S3 notification",
        events.s3_notification(events.created("d.txt"), events.created("e.txt")),
        events.s3_notification(events.created("f.txt", bucket="someone-elses")))
    ids = [record["messageId"] for record in event["Records"]]
    response = runtime.sqs_batch(event, events.lambda_context("solar-rag-indexer"))
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [ids[1], ids[3], ids[4],
                                                                            ids[5]]
    assert [[c.key for c in m] for m in ingestion.applied] == [["a.txt"], ["b.pdf"], ["c.txt"],
                                                               ["d.txt", "e.txt"]]


def test_the_edge_keeps_every_message_when_the_indexer_is_not_configured(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def unconfigured() -> Any:
        raise NotConfigured("DOCUMENTS_BUCKET is not set")

    monkeypatch.setattr(runtime, "container", unconfigured)
    event = events.sqs_event(events.s3_notification(events.created("a.txt")), "x")
    response = runtime.sqs_batch(event, events.lambda_context("solar-rag-indexer"))
    assert len(response["batchItemFailures"]) == 2
