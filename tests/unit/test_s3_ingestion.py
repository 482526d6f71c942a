"""S3 notifications → indexing decisions, with the real indexing service over in-memory ports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from solar_rag.domain import Change, DocumentStatus, EmbeddingKind, Metadata, Outcome, SourceDocument, Upsert
from solar_rag.errors import (
    InvalidInput,
    NotConfigured,
    UpstageKeyRejected,
    UpstreamError,
    UpstreamRejected,
    VectorStoreError,
)
from solar_rag.lambda_edge.events import parse_notification
from solar_rag.parsing.files import SUPPORTED_EXTENSIONS, load_file
from solar_rag.parsing.parsers import parse_document
from solar_rag.parsing.sources import parse_sidecar
from solar_rag.services import indexing
from solar_rag.services.indexing import IndexingService
from solar_rag.services.intake import QUEUE_PREFIX
from solar_rag.services.s3_ingestion import ObjectChange, S3Ingestion
from solar_rag.text.chunking import Chunker

from tests.fakes import events
from tests.fakes.memory import FakeEmbedder, MemoryBucket, MemoryRegistry, MemoryStore

BUCKET = events.BUCKET
MAX_BYTES = 4096


@dataclass
class World:
    objects: MemoryBucket
    store: MemoryStore
    registry: MemoryRegistry
    embedder: FakeEmbedder
    ingestion: S3Ingestion

    def put(self, key: str, text: str | bytes) -> None:
        self.objects.objects[key] = text.encode() if isinstance(text, str) else text

    def status(self, key: str) -> DocumentStatus | None:
        record = self.registry.get(key)
        return record.status if record else None

    def texts(self, key: str) -> str:
        return " ".join(c.chunk.text for c in self.store.chunks.values() if c.chunk.document_id == key)


@pytest.fixture
def world() -> World:
    objects, store, registry, embedder = MemoryBucket(), MemoryStore(), MemoryRegistry(), FakeEmbedder()
    service = IndexingService(parse=parse_document, chunker=Chunker(size_tokens=200, overlap_tokens=20),
                              chunker_signature="test", embedder=embedder, store=store,
                              registry=registry)
    ingestion = S3Ingestion(indexing=service, objects=objects, load=load_file,
                            supported_extensions=SUPPORTED_EXTENSIONS, max_object_bytes=MAX_BYTES,
                            bucket=BUCKET, registry=registry)
    return World(objects, store, registry, embedder, ingestion)


seq = events.Sequencer()


def handle(world: World, *records: dict[str, object]) -> list[str]:
    """One message; the error of an outcome that is not settled is raised (SQS redelivers)."""
    changes = parse_notification(json.dumps(events.s3_notification(*records)), bucket=BUCKET)
    [outcomes] = world.ingestion.apply([changes])
    for outcome in outcomes:
        if not outcome.settled:
            assert outcome.error is not None
            raise outcome.error
    return [o.status for o in outcomes]


def handle_bodies(world: World, bodies: Sequence[str]) -> list[list[Outcome] | Exception]:
    """What the Lambda edge does with an SQS batch: parse each body, apply the readable ones
    together; a message is an error when unreadable or when an outcome is not settled."""
    parsed: list[list[ObjectChange] | Exception] = []
    for body in bodies:
        try:
            parsed.append(parse_notification(body, bucket=BUCKET))
        except InvalidInput as error:
            parsed.append(error)
    applied = iter(world.ingestion.apply([p for p in parsed if not isinstance(p, Exception)]))
    results: list[list[Outcome] | Exception] = []
    for message in parsed:
        outcomes = message if isinstance(message, Exception) else next(applied)
        unsettled = [] if isinstance(outcomes, Exception) else [
            o.error for o in outcomes if o.error is not None and not o.settled]
        results.append(unsettled[0] if unsettled else outcomes)
    return results


# --- parsing ---------------------------------------------------------------------------------------

def test_test_event_has_no_changes() -> None:
    assert parse_notification(json.dumps(events.s3_test_event())) == []


def test_keys_are_decoded_and_markers_kept() -> None:
    record = events.created("reports/2024/q1 results+final.md", size=12, etag="abc",
                            sequencer="0055AED6DCD90281E5", version_id="v1")
    [change] = parse_notification(events.s3_notification(record))
    assert record["s3"]["object"]["key"] == "reports%2F2024%2Fq1+results%2Bfinal.md"
    assert change == ObjectChange(kind="created", key="reports/2024/q1 results+final.md",
                                  bucket=BUCKET, sequencer="0055AED6DCD90281E5", etag="abc",
                                  version_id="v1", size=12)


def test_removed_and_other_event_kinds() -> None:
    body = events.s3_notification(
        events.removed("a.txt", sequencer="01"),
        events.s3_record("ObjectRemoved:DeleteMarkerCreated", "b.txt", version_id="v9"),
        events.s3_record("ObjectTagging:Put", "c.txt"),
        events.s3_record("ObjectRestore:Completed", "d.txt"),
    )
    changes = parse_notification(body)
    assert [(c.kind, c.key, c.sequencer, c.size) for c in changes] == [
        ("removed", "a.txt", "01", None), ("removed", "b.txt", None, None)]


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"Records": "x"}', '{"foo": 1}',
                                  '{"Records": [{"eventSource": "aws:sns"}]}',
                                  '{"Records": [{"eventSource": "aws:s3", "eventName": '
                                  '"ObjectCreated:Put", "s3": {"object": {}}}]}'])
def test_malformed_messages_are_invalid(body: str) -> None:
    with pytest.raises(InvalidInput):
        parse_notification(body)


def test_sidecar_plain_and_typed_values() -> None:
    data = json.dumps({"metadataAttributes": {
        "lang": "ko", "year": 2024, "public": True,
        "team": {"value": {"type": "STRING", "stringValue": "infra"}},
        "score": {"value": {"type": "NUMBER", "numberValue": 4.5}},
        "draft": {"value": {"type": "BOOLEAN", "booleanValue": False}}}}).encode()
    assert parse_sidecar(data) == {"lang": "ko", "year": 2024, "public": True, "team": "infra",
                                   "score": 4.5, "draft": False}


@pytest.mark.parametrize("data", [b"{", b'{"other": {}}', b'{"metadataAttributes": {"a": [1]}}',
                                  b'{"metadataAttributes": {"a": null}}',
                                  b'{"metadataAttributes": {"bad key": "x"}}',
                                  b'{"metadataAttributes": {"a": {"value": {"type": "STRING_LIST"}}}}'])
def test_invalid_sidecars(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_sidecar(data)


# --- created ---------------------------------------------------------------------------------------

def test_created_object_is_indexed_with_sidecar_metadata(world: World) -> None:
    world.put("docs/guide.md", "# Guide\n\nThe blue widget ships on Mondays.")
    world.put("docs/guide.md.metadata.json", json.dumps({"metadataAttributes": {"team": "infra"}}))
    assert handle(world, events.created("docs/guide.md", sequencer=seq())) == ["indexed"]
    record = world.registry.get("docs/guide.md")
    assert record is not None and record.status is DocumentStatus.INDEXED
    assert record.source == f"s3://{BUCKET}/docs/guide.md"
    assert record.etag and record.sequencer
    assert record.metadata == {"team": "infra"}
    assert all(c.chunk.metadata == {"team": "infra"} for c in world.store.chunks.values())
    assert "blue widget" in world.texts("docs/guide.md")


def test_sidecar_event_reindexes_the_main_object(world: World) -> None:
    world.put("a.txt", "Apples are red.")
    handle(world, events.created("a.txt", sequencer=seq()))
    world.put("a.txt.metadata.json", json.dumps({"metadataAttributes": {"fruit": True}}))
    assert handle(world, events.created("a.txt.metadata.json", sequencer=seq())) == ["indexed"]
    assert world.registry.get("a.txt").metadata == {"fruit": True}  # type: ignore[union-attr]
    assert world.registry.get("a.txt.metadata.json") is None
    del world.objects.objects["a.txt.metadata.json"]
    assert handle(world, events.removed("a.txt.metadata.json", sequencer=seq())) == ["indexed"]
    assert world.registry.get("a.txt").metadata == {}  # type: ignore[union-attr]
    assert world.status("a.txt") is DocumentStatus.INDEXED


def test_sidecar_without_main_object_is_skipped(world: World) -> None:
    world.put("ghost.md.metadata.json", json.dumps({"metadataAttributes": {}}))
    assert handle(world, events.created("ghost.md.metadata.json")) == ["skipped"]
    assert world.registry.records == {}


def test_invalid_sidecar_fails_the_document_with_the_reason(world: World) -> None:
    world.put("b.txt", "Bananas are yellow.")
    world.put("b.txt.metadata.json", '{"metadataAttributes": {"tags": ["x"]}}')
    assert handle(world, events.created("b.txt", sequencer=seq())) == ["failed"]
    record = world.registry.get("b.txt")
    assert record is not None and record.status is DocumentStatus.FAILED
    assert "b.txt.metadata.json" in (record.error or "") and "tags" in (record.error or "")
    assert world.store.chunks == {}


def test_unsupported_type_is_failed_and_acknowledged_and_old_chunks_go(world: World) -> None:
    world.put("c.exe", b"MZ\x90\x00")
    assert handle(world, events.created("c.exe", sequencer=seq(), size=4)) == ["failed"]
    assert "unsupported file type .exe" in (world.registry.get("c.exe").error or "")  # type: ignore[union-attr]
    assert world.objects.reads == []  # decided from the key, never downloaded


def test_too_big_by_declared_size_and_while_reading(world: World) -> None:
    world.put("big.txt", "x " * MAX_BYTES)
    assert handle(world, events.created("big.txt", size=MAX_BYTES * 2, sequencer=seq())) == ["failed"]
    assert world.objects.reads == []
    assert "MAX_OBJECT_BYTES" in (world.registry.get("big.txt").error or "")  # type: ignore[union-attr]
    world.registry.records.clear()
    assert handle(world, events.created("big.txt", sequencer=seq())) == ["failed"]  # size unknown
    assert world.status("big.txt") is DocumentStatus.FAILED


def test_file_the_parser_cannot_read_is_failed(world: World) -> None:
    world.put("broken.pdf", b"%PDF-1.7 this is not really a pdf")
    assert handle(world, events.created("broken.pdf", sequencer=seq())) == ["failed"]
    assert world.registry.get("broken.pdf").error  # type: ignore[union-attr]


def test_loader_crash_is_failed_not_retried(world: World) -> None:
    def crashing(data: bytes, filename: str, *, document_id: str, metadata: Metadata | None = None,
                 source: str | None = None) -> SourceDocument:
        raise KeyError("xref")

    ingestion = S3Ingestion(indexing=world.ingestion._indexing, objects=world.objects, load=crashing,
                            supported_extensions={".pdf"}, max_object_bytes=MAX_BYTES)
    world.put("odd.pdf", b"%PDF")
    [[outcome]] = ingestion.apply([parse_notification(events.s3_notification(events.created("odd.pdf")))])
    assert outcome.status == "failed" and "KeyError" in str(outcome.error)


def test_empty_document_is_failed(world: World) -> None:
    world.put("empty.txt", "   \n")
    assert handle(world, events.created("empty.txt", sequencer=seq())) == ["failed"]
    assert "no text" in (world.registry.get("empty.txt").error or "")  # type: ignore[union-attr]


def test_object_gone_since_the_event_is_skipped(world: World) -> None:
    assert handle(world, events.created("gone.txt", sequencer=seq())) == ["skipped"]
    assert world.registry.records == {}


def test_duplicate_event_is_a_no_op(world: World) -> None:
    world.put("d.txt", "Dates are sweet.")
    record = events.created("d.txt", sequencer=seq())
    assert handle(world, record, record) == ["indexed", "skipped"]  # same sequencer: not newer
    no_sequencer = events.created("d.txt")  # moto's records: the content hash decides
    assert handle(world, no_sequencer) == ["unchanged"]
    assert len(world.store.chunks) == 1
    assert len(world.embedder.calls) == 1


# --- ordering and removal --------------------------------------------------------------------------

def test_removed_deletes_and_stale_events_are_ignored(world: World) -> None:
    world.put("e.txt", "Eggplants are purple.")
    old_create, delete = seq(), seq()
    handle(world, events.created("e.txt", sequencer=old_create))
    del world.objects.objects["e.txt"]
    assert handle(world, events.removed("e.txt", sequencer=delete)) == ["deleted"]
    assert world.store.chunks == {}
    world.put("e.txt", "Eggplants are purple.")  # the object reappears, but the event is old
    assert handle(world, events.created("e.txt", sequencer=old_create)) == ["skipped"]
    assert world.status("e.txt") is DocumentStatus.DELETED and world.store.chunks == {}


def test_out_of_order_newest_state_wins(world: World) -> None:
    first, second = seq(), seq()
    world.put("f.txt", "Figs version two.")
    assert handle(world, events.created("f.txt", sequencer=second)) == ["indexed"]
    assert handle(world, events.created("f.txt", sequencer=first)) == ["skipped"]
    assert "version two" in world.texts("f.txt")


def test_removal_without_sequencer_keeps_an_object_that_exists_again(world: World) -> None:
    world.put("g.txt", "Grapes.")
    handle(world, events.created("g.txt"))
    world.objects.reads.clear()
    assert handle(world, events.removed("g.txt")) == ["skipped"]
    assert world.status("g.txt") is DocumentStatus.INDEXED
    assert world.objects.heads == ["g.txt"] and world.objects.reads == []  # a HEAD, no download
    del world.objects.objects["g.txt"]
    assert handle(world, events.removed("g.txt")) == ["deleted"]


def test_wrong_bucket_is_rejected(world: World) -> None:
    with pytest.raises(InvalidInput, match="bucket"):
        handle(world, events.created("h.txt", bucket="someone-elses"))


# --- errors ----------------------------------------------------------------------------------------

def test_retryable_error_propagates_and_registry_shows_it(world: World) -> None:
    world.put("i.txt", "Ice is cold.")
    world.embedder.fail_with = UpstreamError("embedding failed (HTTP 500)")
    with pytest.raises(UpstreamError):
        handle(world, events.created("i.txt", sequencer=seq()))
    record = world.registry.get("i.txt")
    assert record is not None and record.status is DocumentStatus.FAILED
    assert "HTTP 500" in (record.error or "")
    world.embedder.fail_with = None
    assert handle(world, events.created("i.txt", sequencer=seq())) == ["indexed"]


def test_configuration_errors_keep_the_event(world: World) -> None:
    world.put("k.txt", "Kiwis.")
    world.embedder.fail_with = NotConfigured("OpenSearch alias 'rag-chunks' does not exist")
    with pytest.raises(NotConfigured):
        handle(world, events.created("k.txt", sequencer=seq()))


def test_rejected_upstage_key_keeps_the_event_for_a_redrive(world: World) -> None:
    world.put("r.txt", "Radishes.")
    world.embedder.fail_with = UpstageKeyRejected("Upstage rejected the API key (401)")
    with pytest.raises(UpstageKeyRejected):
        handle(world, events.created("r.txt", sequencer=seq()))
    world.embedder.fail_with = None  # the operator stores the right key, then redrives the DLQ
    assert handle(world, events.created("r.txt", sequencer=seq())) == ["indexed"]


def test_rejected_upstream_request_is_failed_and_acknowledged(world: World) -> None:
    world.put("j.txt", "Jam.")
    world.embedder.fail_with = UpstreamRejected("input too long")
    assert handle(world, events.created("j.txt", sequencer=seq())) == ["failed"]
    assert world.registry.get("j.txt").error == "input too long"  # type: ignore[union-attr]


# --- batches of messages -----------------------------------------------------------------------------

def message(*records: dict[str, object]) -> str:
    return json.dumps(events.s3_notification(*records))


def statuses(results: list[list[Outcome] | Exception]) -> list[object]:
    return [type(r).__name__ if isinstance(r, Exception) else [o.status for o in r]
            for r in results]


def test_created_objects_of_a_batch_share_one_embedding_call_and_one_write(world: World) -> None:
    for name in ("a", "b", "c"):
        world.put(f"{name}.txt", f"{name.upper()} is a letter of the alphabet.")
    results = handle_bodies(world,
        [message(events.created(f"{name}.txt", sequencer=seq())) for name in ("a", "b", "c")])
    assert statuses(results) == [["indexed"], ["indexed"], ["indexed"]]
    assert len(world.embedder.calls) == 1 and world.store.batch_sizes == [3]
    record = world.registry.get("b.txt")
    assert record is not None and record.etag == f"etag-{len(world.objects.objects['b.txt'])}"


def test_a_key_named_twice_in_a_batch_is_handled_in_message_order(world: World) -> None:
    world.put("x.txt", "X marks the spot.")
    world.put("y.txt", "Y is a letter.")
    create, delete = seq(), seq()
    results = handle_bodies(world, [
        message(events.created("x.txt", sequencer=create)),
        message(events.created("y.txt", sequencer=seq())),
        message(events.removed("x.txt", sequencer=delete)),
    ])
    assert statuses(results) == [["indexed"], ["indexed"], ["deleted"]]
    assert world.status("x.txt") is DocumentStatus.DELETED
    assert world.store.batch_sizes == [2]  # x.txt and y.txt together; x.txt's removal after
    assert world.store.document_ids() == {"y.txt"}


def test_sidecar_in_the_batch_keeps_its_document_on_the_ordered_path(world: World) -> None:
    world.put("m.txt", "Mangoes are sweet.")
    world.put("m.txt.metadata.json", b'{"metadataAttributes": {"team": "fruit"}}')
    results = handle_bodies(world, [
        message(events.created("m.txt", sequencer=seq())),
        message(events.created("m.txt.metadata.json", sequencer=seq())),
    ])
    assert statuses(results) == [["indexed"], ["unchanged"]]
    assert world.store.batch_sizes == [1]  # m.txt alone; the sidecar event found it unchanged
    record = world.registry.get("m.txt")
    assert record is not None and record.metadata == {"team": "fruit"}


def test_each_message_of_a_batch_gets_its_own_result(world: World) -> None:
    world.put("ok.txt", "Oranges are orange.")
    world.put("weird.bin", b"\x00\x01")
    world.put("busy.txt", "Bananas are yellow.")
    world.store.reject_documents["busy.txt"] = VectorStoreError("OpenSearch bulk failed (429)")
    results = handle_bodies(world, [
        message(events.created("ok.txt", sequencer=seq())),
        "not json",
        message(events.created("weird.bin", sequencer=seq())),
        message(events.created("busy.txt", sequencer=seq())),
        message(events.created("gone.txt", sequencer=seq())),
    ])
    assert statuses(results) == [["indexed"], "InvalidInput", ["failed"], "VectorStoreError",
                                 ["skipped"]]
    busy = world.registry.get("busy.txt")
    assert busy is not None and busy.status is DocumentStatus.FAILED  # retried by SQS


def test_a_document_upstage_refuses_fails_alone(world: World) -> None:
    for name in ("p", "q", "r"):
        world.put(f"{name}.txt", f"{name.upper()} text. " + ("POISON" if name == "q" else ""))
    real_embed = world.embedder.embed

    def refuse_poison(texts: Sequence[str], kind: EmbeddingKind) -> list[list[float]]:
        if any("POISON" in t for t in texts):
            raise UpstreamRejected("Upstage rejected the embeddings request (400)")
        return real_embed(texts, kind)

    world.embedder.embed = refuse_poison  # type: ignore[method-assign]
    results = handle_bodies(world,
        [message(events.created(f"{name}.txt", sequencer=seq())) for name in ("p", "q", "r")])
    assert statuses(results) == [["indexed"], ["failed"], ["indexed"]]
    assert "rejected" in (world.registry.get("q.txt").error or "")  # type: ignore[union-attr]


def test_large_documents_are_written_in_groups_that_make_progress(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexing, "MAX_GROUP_CHARS", 100)
    sizes = {"s1.txt": 30, "s2.txt": 40, "big.txt": 150, "s3.txt": 20, "s4.txt": 90}
    for key, size in sizes.items():
        world.put(key, ("word " * size)[:size].strip() + ".")
    results = handle_bodies(world,
        [message(events.created(key, sequencer=seq())) for key in sizes])
    assert statuses(results) == [["indexed"]] * 5
    assert world.store.batch_sizes == [2, 1, 1, 1]  # s1+s2, big alone, s3 (s3+s4 > 100), s4


def test_an_unexpected_error_of_a_group_fails_its_messages_not_the_batch(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.put("u.txt", "Umbrellas keep you dry.")
    world.put("v.txt", "Violins have four strings.")
    world.put("w.txt", "Walnuts grow on trees.")  # x.txt does not exist: skipped

    monkeypatch.setattr(indexing, "MAX_GROUP_CHARS", 50)  # u.txt and v.txt, then w.txt alone
    service = world.ingestion._indexing
    real = service.apply

    def broken_for_groups(changes: Sequence[Change]) -> list[Outcome]:
        if len(changes) > 1:
            raise RuntimeError("registry client bug")
        return real(changes)

    monkeypatch.setattr(service, "apply", broken_for_groups)
    results = handle_bodies(world, [
        message(events.created("u.txt", sequencer=seq())),
        message(events.created("v.txt", sequencer=seq())),
        message(events.created("w.txt", sequencer=seq()), events.created("x.txt")),
    ])
    assert statuses(results) == ["RuntimeError", "RuntimeError", ["indexed", "skipped"]]


def test_an_event_for_another_bucket_fails_alone_in_a_batch(world: World) -> None:
    world.put("own.txt", "Our own object.")
    results = handle_bodies(world, [
        message(events.created("theirs.txt", bucket="someone-elses", sequencer=seq())),
        message(events.created("own.txt", sequencer=seq())),
    ])
    assert statuses(results) == ["InvalidInput", ["indexed"]]


# --- documents queued by POST /v1/documents (services/intake.py) ------------------------------------

def queue_document(world: World, doc: SourceDocument) -> str:
    from solar_rag.services.intake import DocumentIntake

    intake = DocumentIntake(world.ingestion._indexing, world.registry,  # type: ignore[arg-type]
                            queue=world.objects)
    assert intake._enqueue(doc).status == "queued"
    [key] = [k for k in world.objects.objects if k.startswith(QUEUE_PREFIX)]
    return key


def test_a_queued_document_is_indexed_under_its_own_id_and_its_object_removed(world: World) -> None:
    key = queue_document(world, SourceDocument(id="notes/queued.md", text="# Q\n\nQuinces are fragrant.",
                                               content_type="text/markdown", metadata={"team": "q"}))
    assert world.status("notes/queued.md") is DocumentStatus.QUEUED
    assert handle(world, events.created(key, sequencer=seq())) == ["indexed"]
    record = world.registry.get("notes/queued.md")
    assert record is not None and record.status is DocumentStatus.INDEXED and record.metadata == {"team": "q"}
    assert "Quinces" in world.texts("notes/queued.md")
    assert key not in world.objects.objects
    assert handle(world, events.removed(key, sequencer=seq())) == ["skipped"]  # its removal is ignored
    assert world.status("notes/queued.md") is DocumentStatus.INDEXED


def test_a_queued_version_superseded_by_a_newer_write_is_not_indexed(world: World) -> None:
    key = queue_document(world, SourceDocument(id="s.txt", text="Old queued words."))
    world.ingestion._indexing.apply([Upsert(SourceDocument(id="s.txt", text="New synchronous words."))])
    assert handle(world, events.created(key, sequencer=seq())) == ["skipped"]
    assert "New synchronous" in world.texts("s.txt") and "Old queued" not in world.texts("s.txt")
    assert key not in world.objects.objects


def test_a_duplicate_event_for_a_removed_queued_object_is_skipped(world: World) -> None:
    key = queue_document(world, SourceDocument(id="d.txt", text="Dates are sweet."))
    event = events.created(key, sequencer=seq())
    assert handle(world, event) == ["indexed"]
    assert handle(world, event) == ["skipped"]


def test_a_queued_document_that_cannot_be_indexed_is_failed(world: World) -> None:
    key = queue_document(world, SourceDocument(id="e.html", text="<html><body><script>x()</script></body></html>",
                                               content_type="text/html"))
    assert handle(world, events.created(key, sequencer=seq())) == ["failed"]
    record = world.registry.get("e.html")
    assert record is not None and record.status is DocumentStatus.FAILED and record.error
    assert key not in world.objects.objects


def test_a_queued_document_with_a_retryable_failure_goes_back_to_the_queue(world: World) -> None:
    key = queue_document(world, SourceDocument(id="r.txt", text="Raspberries."))
    world.store.reject_documents["r.txt"] = VectorStoreError("OpenSearch bulk failed (429)")
    with pytest.raises(VectorStoreError):
        handle(world, events.created(key, sequencer=seq()))
    assert key in world.objects.objects  # kept for the redelivery


def test_an_upload_for_an_id_with_a_lone_surrogate_is_refused(world: World) -> None:
    from solar_rag.services.intake import UploadService

    uploads = UploadService(world.objects, supported_extensions=SUPPORTED_EXTENSIONS, max_object_bytes=MAX_BYTES)
    with pytest.raises(InvalidInput, match="U\\+D800"):
        uploads.presign("odd\ud800.md")
