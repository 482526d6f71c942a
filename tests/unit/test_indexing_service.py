from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from solar_rag.domain import (
    ChangeMarker,
    Chunk,
    DocumentStatus,
    DocumentWrite,
    EmbeddingKind,
    ParsedDocument,
    Rejection,
    Section,
    SourceDocument,
    Upsert,
    WriteResult,
    chunk_id_for,
)
from solar_rag.errors import (
    ConcurrentUpdate,
    DocumentNotFound,
    InvalidInput,
    PayloadTooLarge,
    UpstreamError,
    UpstreamRateLimited,
    VectorStoreError,
)
from solar_rag.services.indexing import IndexingService

from tests.fakes.memory import FakeEmbedder, MemoryRegistry, MemoryStore


def parse(doc: SourceDocument) -> ParsedDocument:
    text = doc.text.strip()
    return ParsedDocument(title=doc.title, text=text, sections=(Section(None, text, 0),))


class ParagraphChunker:
    def chunk(self, doc: SourceDocument, parsed: ParsedDocument, version: str) -> list[Chunk]:
        chunks, offset = [], 0
        for index, paragraph in enumerate(parsed.text.split("\n\n")):
            start = parsed.text.index(paragraph, offset)
            offset = start + len(paragraph)
            chunks.append(Chunk(doc.id, chunk_id_for(doc.id, version, index), index, paragraph,
                                parsed.title, None, start, offset, version, doc.source,
                                dict(doc.metadata)))
        return chunks


@pytest.fixture
def parts() -> tuple[MemoryStore, MemoryRegistry, FakeEmbedder]:
    return MemoryStore(), MemoryRegistry(), FakeEmbedder()


def service(store: MemoryStore, registry: MemoryRegistry, embedder: FakeEmbedder,
            max_chars: int = 10_000) -> IndexingService:
    return IndexingService(parse=parse, chunker=ParagraphChunker(), chunker_signature="p",
                           embedder=embedder, store=store, registry=registry,
                           max_document_chars=max_chars,
                           clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def doc(text: str = "one\n\ntwo\n\nthree", **kw: object) -> SourceDocument:
    return SourceDocument(id=str(kw.pop("id", "a")), text=text, **kw)  # type: ignore[arg-type]


def test_index_embeds_passages_and_records(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    _, registry, embedder = parts
    outcome = service(*parts).index(doc(title="T", metadata={"team": "x"}))
    assert (outcome.status, outcome.chunks) == ("indexed", 3)
    assert embedder.calls[0][0] is EmbeddingKind.PASSAGE
    assert embedder.calls[0][1][0] == "T\n\none"  # title gives the chunk context
    record = registry.get("a")
    assert record is not None
    assert record.status is DocumentStatus.INDEXED
    assert record.chunks == 3 and record.metadata == {"team": "x"} and record.title == "T"
    assert len(record.chunk_ids) == 3 and record.content_hash


def test_same_content_is_unchanged_without_embedding(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, _, embedder = parts
    svc = service(*parts)
    svc.index(doc())
    calls = len(embedder.calls)
    assert svc.index(doc()).status == "unchanged"
    assert len(embedder.calls) == calls and store.upserts == 1


def test_metadata_change_reindexes(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    svc = service(*parts)
    svc.index(doc(metadata={"v": 1}))
    assert svc.index(doc(metadata={"v": 2})).status == "indexed"
    assert {c.chunk.metadata["v"] for c in parts[0].chunks.values()} == {2}


def test_new_content_replaces_all_old_chunks(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, _, _ = parts
    svc = service(*parts)
    svc.index(doc("a\n\nb\n\nc\n\nd"))
    svc.index(doc("only one now"))
    assert [c.chunk.text for c in store.chunks.values()] == ["only one now"]


def test_failed_write_keeps_previous_version_and_records_error(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, embedder = parts
    svc = service(*parts)
    svc.index(doc("old text"))
    embedder.fail_with = UpstreamRateLimited("Upstage rate limit")
    with pytest.raises(UpstreamRateLimited):
        svc.index(doc("new text"))
    assert [c.chunk.text for c in store.chunks.values()] == ["old text"]
    record = registry.get("a")
    assert record is not None and record.status is DocumentStatus.FAILED
    assert record.error == "Upstage rate limit" and record.chunks == 1
    embedder.fail_with = None
    store.fail_upsert_with = VectorStoreError("bulk failed")
    with pytest.raises(VectorStoreError):
        svc.index(doc("new text"))
    store.fail_upsert_with = None
    assert svc.index(doc("new text")).status == "indexed"
    assert registry.get("a").status is DocumentStatus.INDEXED  # type: ignore[union-attr]
    assert registry.get("a").error is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (SourceDocument(id="", text="x"), InvalidInput),
        (SourceDocument(id="a", text="   \n "), InvalidInput),
        (SourceDocument(id="a" * 1025, text="x"), InvalidInput),
        (SourceDocument(id="a", text="x", content_type="application/pdf"), InvalidInput),
        (SourceDocument(id="a", text="x" * 10_001), PayloadTooLarge),
    ],
)
def test_invalid_documents_are_rejected_before_any_work(
    parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder], document: SourceDocument,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        service(*parts).index(document)
    assert parts[2].calls == [] and parts[1].records == {}


def test_delete_removes_chunks_and_hides_document(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, _ = parts
    svc = service(*parts)
    svc.index(doc())
    svc.index(doc(id="b"))
    assert svc.delete("a").status == "deleted"
    assert store.document_ids() == {"b"}
    assert registry.get("a").status is DocumentStatus.DELETED  # type: ignore[union-attr]
    with pytest.raises(DocumentNotFound):
        svc.delete("a")
    with pytest.raises(DocumentNotFound):
        svc.delete("never-existed")


def test_out_of_order_events_newest_wins(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, _, _ = parts
    svc = service(*parts)
    assert svc.index(doc("newest"), marker=ChangeMarker("0000000002")).status == "indexed"
    assert svc.index(doc("older"), marker=ChangeMarker("0000000001")).status == "skipped"
    assert [c.chunk.text for c in store.chunks.values()] == ["newest"]


def test_delete_then_late_older_create_does_not_resurrect(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, _ = parts
    svc = service(*parts)
    assert svc.delete("a", marker=ChangeMarker("05")).status == "deleted"  # unknown yet: tombstone
    assert svc.index(doc("stale"), marker=ChangeMarker("04")).status == "skipped"
    assert store.chunks == {}
    assert svc.index(doc("fresh"), marker=ChangeMarker("06")).status == "indexed"
    assert registry.get("a").sequencer == "06"  # type: ignore[union-attr]


def test_duplicate_event_is_a_noop(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, _, embedder = parts
    svc = service(*parts)
    svc.index(doc(), marker=ChangeMarker("0A"))
    calls = len(embedder.calls)
    assert svc.index(doc(), marker=ChangeMarker("0A")).status == "skipped"
    assert len(embedder.calls) == calls and store.upserts == 1


def test_mark_failed_removes_previous_chunks(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, _ = parts
    svc = service(*parts)
    svc.index(doc(), marker=ChangeMarker("01"))
    [outcome] = svc.apply([Rejection("a", "unsupported file type .exe", ChangeMarker("02"))])
    assert outcome.status == "failed" and store.chunks == {}
    record = registry.get("a")
    assert record is not None and record.status is DocumentStatus.FAILED
    assert record.error == "unsupported file type .exe"


def test_sequencers_compare_numerically_across_lengths() -> None:
    assert ChangeMarker("100").is_newer_than("FF") is True
    assert ChangeMarker("0FF").is_newer_than("100") is False
    assert ChangeMarker(None).is_newer_than("01") is True


def test_index_many_shares_embedding_calls(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, embedder = parts
    svc = service(*parts)
    svc.index(doc("same", id="old"))
    embedder.calls.clear()
    outcomes = svc.index_many([doc("x\n\ny", id="a"), doc("z", id="b"), doc("same", id="old")])
    assert [(o.id, o.status, o.chunks) for o in outcomes] == [
        ("a", "indexed", 2), ("b", "indexed", 1), ("old", "unchanged", 1)]
    assert len(embedder.calls) == 1 and embedder.calls[0][1] == ["x", "y", "z"]
    assert store.document_ids() == {"a", "b", "old"}
    assert registry.get("b").status is DocumentStatus.INDEXED  # type: ignore[union-attr]


def test_index_many_embedding_failure_writes_nothing_and_records_why(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, embedder = parts
    svc = service(*parts)
    svc.index(doc("old text", id="a"))
    embedder.fail_with = UpstreamRateLimited("Upstage rate limit")
    with pytest.raises(UpstreamRateLimited):
        svc.index_many([doc("new", id="a"), doc("fresh", id="b")])
    assert [c.chunk.text for c in store.chunks.values()] == ["old text"]
    assert registry.get("a").status is DocumentStatus.FAILED  # type: ignore[union-attr]
    assert registry.get("b").error == "Upstage rate limit"  # type: ignore[union-attr]


def test_index_many_rechecks_under_the_lock(parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    """A writer that indexed the same content meanwhile makes the batch's copy 'unchanged'."""
    store, _, embedder = parts
    svc = service(*parts)
    original_embed = embedder.embed
    raced: list[bool] = []

    def embed_and_race(texts: list[str], kind: EmbeddingKind) -> list[list[float]]:
        vectors = original_embed(texts, kind)
        if not raced:
            raced.append(True)
            service(*parts).index(doc("race", id="r"))  # the concurrent writer
        return vectors

    embedder.embed = embed_and_race  # type: ignore[method-assign, assignment]
    assert [o.status for o in svc.index_many([doc("race", id="r")])] == ["unchanged"]
    assert store.upserts == 1


def test_index_many_with_repeated_ids_applies_them_in_order(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, _, _ = parts
    outcomes = service(*parts).index_many([doc("first", id="d"), doc("second", id="d")])
    assert [o.status for o in outcomes] == ["indexed", "indexed"]
    assert [c.chunk.text for c in store.chunks.values()] == ["second"]


def test_index_many_writes_the_batch_in_one_store_call(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, _ = parts
    svc = service(*parts)
    svc.index(doc("old\n\nversion", id="b"))
    old_ids = registry.get("b").chunk_ids  # type: ignore[union-attr]
    store.batch_sizes.clear()
    recorded: list[list[str]] = []
    original = store.upsert_documents

    def spy(writes: Sequence[DocumentWrite]) -> list[WriteResult]:
        recorded.extend(list(w.previous_chunk_ids) for w in writes)
        return original(writes)

    store.upsert_documents = spy  # type: ignore[method-assign]
    svc.index_many([doc("x", id="c"), doc("new", id="b"), doc("y", id="a")])
    assert store.batch_sizes == [3]
    assert recorded == [[], old_ids, []]  # the old version's ids go with the write


def test_index_many_records_a_rejected_document_and_writes_the_others(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, _ = parts
    svc = service(*parts)
    svc.index(doc("old text", id="a"))
    store.reject_documents["a"] = VectorStoreError("1 of 1 chunks of document 'a' were not written")
    with pytest.raises(VectorStoreError, match="document 'a'"):
        svc.index_many([doc("new text", id="a"), doc("fresh", id="b")])
    a, b = registry.get("a"), registry.get("b")
    assert a is not None and b is not None
    assert a.status is DocumentStatus.FAILED and "not written" in (a.error or "")
    assert a.chunks == 1  # what is still indexed: the old version
    assert b.status is DocumentStatus.INDEXED and b.chunk_ids == [chunk_id_for("b", b.content_hash or "", 0)]
    assert sorted(c.chunk.text for c in store.chunks.values()) == ["fresh", "old text"]


def test_index_many_request_failure_records_every_document(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, registry, _ = parts
    store.fail_upsert_with = VectorStoreError("OpenSearch is unreachable")
    with pytest.raises(VectorStoreError):
        service(*parts).index_many([doc("one", id="a"), doc("two", id="b")])
    for document_id in ("a", "b"):
        record = registry.get(document_id)
        assert record is not None and record.status is DocumentStatus.FAILED
        assert record.error == "OpenSearch is unreachable"


def test_overlapping_batches_in_two_threads_do_not_deadlock(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    """Locks are taken in id order, so batches naming the same documents in opposite
    orders wait for each other instead of each holding what the other needs."""
    store, registry, embedder = parts
    svc = service(*parts)
    both_embedded = threading.Barrier(2)
    original_embed = embedder.embed

    def embed_together(texts: Sequence[str], kind: EmbeddingKind) -> list[list[float]]:
        vectors = original_embed(texts, kind)
        both_embedded.wait(timeout=5)  # both threads then race for the locks
        return vectors

    original_locked = registry.locked

    def slow_locked(document_id: str) -> AbstractContextManager[None]:
        time.sleep(0.001)  # let the other thread run between two lock acquisitions
        return original_locked(document_id)

    embedder.embed = embed_together  # type: ignore[method-assign]
    registry.locked = slow_locked  # type: ignore[method-assign, assignment]
    ids = [f"doc-{i:02d}" for i in range(20)]
    batches = [[doc(f"text {i} {n}", id=i) for i in order]
               for n, order in enumerate((ids, ids[::-1]))]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(svc.index_many, batches))
    assert all(o.status == "indexed" for outcomes in results for o in outcomes)
    for document_id in ids:
        record = registry.get(document_id)
        assert record is not None and record.status is DocumentStatus.INDEXED
        versions = [c.chunk.version for c in store.chunks.values()
                    if c.chunk.document_id == document_id]
        assert versions == [record.content_hash]


def test_apply_orders_events_by_their_markers(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    _, registry, embedder = parts
    svc = service(*parts)
    svc.index(doc("same", id="same"), marker=ChangeMarker(sequencer="0A"))
    svc.index(doc("newer", id="stale"), marker=ChangeMarker(sequencer="0F"))
    embedder.calls.clear()
    results = svc.apply([Upsert(doc("same", id="same"), ChangeMarker(sequencer="0B", etag="e2")),
                         Upsert(doc("older", id="stale"), ChangeMarker(sequencer="0C")),
                         Upsert(doc("fresh", id="new"))])
    assert [(r.id, r.status) for r in results if r.error is None] == [
        ("same", "unchanged"), ("stale", "skipped"), ("new", "indexed")]
    same = registry.get("same")
    assert same is not None and (same.sequencer, same.etag) == ("0B", "e2")  # recorded
    stale = registry.get("stale")
    assert stale is not None and stale.sequencer == "0F"
    assert [texts for _, texts in embedder.calls] == [["fresh"]]


def test_apply_returns_errors_instead_of_raising(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    store, _, _ = parts
    store.reject_documents["b"] = VectorStoreError("rejected")
    results = service(*parts).apply([Upsert(doc("one", id="a")), Upsert(doc("", id="empty")),
                                     Upsert(doc("two", id="b"))])
    assert results[0].error is None and results[0].status == "indexed"
    assert isinstance(results[1].error, InvalidInput) and results[1].status == "failed"
    assert isinstance(results[2].error, VectorStoreError) and results[2].status == "failed"


def test_upstream_outage_stops_one_by_one_embedding(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    _, registry, embedder = parts
    embedder.fail_with = UpstreamError("Upstage embeddings failed with HTTP 503")
    attempts: list[int] = []
    original = embedder.embed

    def counting(texts: Sequence[str], kind: EmbeddingKind) -> list[list[float]]:
        attempts.append(len(texts))
        return original(texts, kind)

    embedder.embed = counting  # type: ignore[method-assign]
    results = service(*parts).apply([Upsert(doc(f"text {i}", id=f"d{i}")) for i in range(6)])
    assert all(isinstance(r.error, UpstreamError) for r in results)
    assert attempts == [6, 1, 1]  # the shared request, then OUTAGE_AFTER documents alone
    assert all(registry.get(f"d{i}").status is DocumentStatus.FAILED  # type: ignore[union-attr]
               for i in range(6))


def test_an_unchanged_event_whose_document_changed_meanwhile_asks_for_a_retry(
        parts: tuple[MemoryStore, MemoryRegistry, FakeEmbedder]) -> None:
    _, registry, _ = parts
    svc = service(*parts)
    svc.index(doc("same", id="d"), marker=ChangeMarker(sequencer="0A"))
    original_locked = registry.locked

    def locked_after_a_concurrent_write(document_id: str) -> AbstractContextManager[None]:
        record = registry.get(document_id)
        assert record is not None
        registry.put(replace(record, content_hash="written-by-someone-else"))
        return original_locked(document_id)

    registry.locked = locked_after_a_concurrent_write  # type: ignore[method-assign, assignment]
    with pytest.raises(ConcurrentUpdate, match="changed while it was being indexed"):
        svc.index(doc("same", id="d"), marker=ChangeMarker(sequencer="0B"))
    record = registry.get("d")
    assert record is not None and record.sequencer == "0A"  # the event is not recorded
