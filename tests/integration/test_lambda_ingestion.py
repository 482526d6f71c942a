"""S3 → SQS → indexer Lambda → query Lambda, end to end under moto, with both vector stores.

Notifications really flow: moto delivers S3 events to the queue (the first message is the
``s3:TestEvent``; moto's records have no sequencer). Ordering tests build events with
sequencers themselves, as S3 sends them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes import events
from tests.fakes.opensearch_stub import OpenSearchStub
from tests.fakes.upstage_server import FakeUpstage, Fault
from tests.integration.lambda_harness import MAX_OBJECT_BYTES, MAX_RECEIVE_COUNT, Lambdas

pytest_plugins = ("tests.integration.lambda_harness",)  # its fixtures

AURORA_V1 = ("# Aurora widget\n\nThe Aurora widget is assembled in Busan. Each Aurora widget has a "
             "cobalt casing.\n\n## Warranty\n\nThe Aurora warranty lasts two years and covers the "
             "casing, the hinge and the battery. " + "Filler about widgets and their care. " * 30)
AURORA_V2 = ("# Aurora widget\n\nThe Aurora widget is now assembled in Daejeon. Each Aurora widget "
             "has a titanium casing.\n\n" + "More words about maintenance schedules. " * 25)
KIMCHI = "Kimchi is fermented napa cabbage seasoned with gochugaru, garlic and ginger."


@pytest.fixture
def ready(stack: Lambdas) -> Lambdas:
    """The stack with the ``s3:TestEvent`` consumed (and acknowledged)."""
    assert stack.pump() == [[]]
    return stack


def versions(chunks: list[dict[str, Any]]) -> set[str]:
    """Version segment of our deterministic chunk ids (``<doc>-<version>-<n>``)."""
    return {c["chunk_id"].split("-")[1] for c in chunks}


def registry(stack: Lambdas, document_id: str) -> dict[str, Any]:
    status, body = stack.document(document_id)
    assert status == 200, body
    result: dict[str, Any] = body
    return result


def assert_index_equals_bucket(stack: Lambdas, bucket_texts: dict[str, str]) -> None:
    """Every object is indexed with exactly its current content; nothing else is."""
    status, listed = stack.http("indexer", "GET", "/v1/documents", query={"limit": "100"})
    assert status == 200
    assert {d["id"] for d in listed["documents"] if d["status"] == "indexed"} == set(bucket_texts)
    for key, text in bucket_texts.items():
        chunks = stack.chunks_of(key)
        record = registry(stack, key)
        assert len(chunks) == record["chunks"] > 0, key
        assert len({c["chunk_id"] for c in chunks}) == len(chunks), key
        assert len(versions(chunks)) == 1, key
        first_words = text.split()[2]
        assert all(c["text"] in text or first_words in c["text"] or c["text"][:40] in text
                   for c in chunks), key


def test_upload_overwrite_delete_end_to_end(ready: Lambdas) -> None:
    stack = ready
    stack.aws.put("guides/aurora.md", AURORA_V1)
    stack.aws.put("guides/aurora.md.metadata.json",
                  json.dumps({"metadataAttributes": {"team": "hardware", "year": 2024}}))
    stack.aws.put("notes/kimchi.txt", KIMCHI)
    assert stack.pump() == [[]]

    answer = stack.query_answer("Where is the Aurora widget assembled?", top_k=3)
    assert answer["citations"][0]["document_id"] == "guides/aurora.md"
    assert "Busan" in answer["answer"]
    record = registry(stack, "guides/aurora.md")
    assert record["status"] == "indexed" and record["metadata"] == {"team": "hardware", "year": 2024}
    assert record["chunks"] >= 2 and record["source"] == f"s3://{events.BUCKET}/guides/aurora.md"
    status, found = stack.http("query", "POST", "/v1/search",
                               {"query": "fermented cabbage", "filters": {"team": "hardware"}})
    assert status == 200 and {r["document_id"] for r in found["results"]} <= {"guides/aurora.md"}
    assert registry(stack, "notes/kimchi.txt")["status"] == "indexed"

    stack.aws.put("guides/aurora.md", AURORA_V2)
    assert stack.pump() == [[]]
    chunks = stack.chunks_of("guides/aurora.md")
    assert chunks and not any("Busan" in c["text"] for c in chunks)
    assert len(versions(chunks)) == 1
    answer = stack.query_answer("Where is the Aurora widget assembled?", top_k=3)
    assert "Daejeon" in answer["answer"] and "Busan" not in json.dumps(answer)

    stack.aws.delete("guides/aurora.md")
    assert stack.pump() == [[]]
    assert stack.chunks_of("guides/aurora.md") == []
    assert stack.document("guides/aurora.md")[0] == 404
    answer = stack.query_answer("Where is the Aurora widget assembled?", top_k=3)
    assert all(c["document_id"] != "guides/aurora.md" for c in answer["citations"])
    assert_index_equals_bucket(stack, {"notes/kimchi.txt": KIMCHI})


def test_duplicate_and_out_of_order_events_with_sequencers(ready: Lambdas) -> None:
    stack = ready
    seq = events.Sequencer()
    s1, s2, s3, s4 = seq(), seq(), seq(), seq()
    key = "ordered/doc.md"
    stack.aws.put(key, AURORA_V1)

    duplicate = events.s3_notification(events.created(key, sequencer=s2, size=len(AURORA_V1)))
    assert stack.index_batch(events.sqs_event(duplicate, duplicate)) == []
    chunks = stack.chunks_of(key)
    assert len(chunks) == registry(stack, key)["chunks"] and len({c["chunk_id"] for c in chunks}) == len(chunks)

    # an older event arriving late changes nothing
    assert stack.index_batch(events.sqs_event(events.s3_notification(events.created(key, sequencer=s1)))) == []
    assert stack.chunks_of(key) == chunks

    # delete (s3), then a late create (s2) while the bucket holds the object again (re-uploaded
    # at s4, whose event is still on its way): the delete wins until the newer create arrives
    assert stack.index_batch(events.sqs_event(events.s3_notification(events.removed(key, sequencer=s3)))) == []
    assert stack.chunks_of(key) == [] and stack.document(key)[0] == 404
    stack.aws.put(key, AURORA_V2)
    assert stack.index_batch(events.sqs_event(events.s3_notification(events.created(key, sequencer=s2)))) == []
    assert stack.chunks_of(key) == []
    assert stack.index_batch(events.sqs_event(events.s3_notification(events.created(key, sequencer=s4)))) == []
    chunks = stack.chunks_of(key)
    assert chunks and all("Busan" not in c["text"] for c in chunks)


@pytest.mark.parametrize("store_kind", ["opensearch"])  # store-independent: one store is enough
def test_a_batch_of_uploads_shares_embedding_requests(
    ready: Lambdas, fake_upstage: FakeUpstage
) -> None:
    stack = ready
    texts = {f"shared/doc-{i}.txt": f"Shared batch document {i} is about topic {i}."
             for i in range(8)}
    for key, text in texts.items():
        stack.aws.put(key, text)
    before = len(fake_upstage.embedding_requests())
    assert stack.pump() == [[]]
    assert len(fake_upstage.embedding_requests()) - before == 1  # eight documents, one request
    assert_index_equals_bucket(stack, texts)


def test_poison_record_in_a_batch_of_ten_fails_alone_and_lands_in_the_dlq(
    ready: Lambdas, fake_upstage: FakeUpstage, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = ready
    poisoned = {"on": True}
    original = fake_upstage._next_fault

    def next_fault(endpoint: str) -> Fault | None:
        last = fake_upstage.requests[-1]
        if poisoned["on"] and endpoint == "embeddings" and any("POISON" in t for t in last.inputs):
            return Fault("status", 500)
        return original(endpoint)  # type: ignore[arg-type]

    monkeypatch.setattr(fake_upstage, "_next_fault", next_fault)
    keys = [f"batch/doc-{i}.txt" for i in range(10)]
    for i, key in enumerate(keys):
        stack.aws.put(key, f"Document {i} talks about topic {i}." + (" POISON" if i == 4 else ""))
    messages = stack.aws.sqs.receive_message(QueueUrl=stack.aws.queue_url, MaxNumberOfMessages=10,
                                             AttributeNames=["All"])["Messages"]
    assert len(messages) == 10
    by_key = {json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"].replace("%2F", "/"): m["MessageId"]
              for m in messages}
    failed = stack.index_batch(events.sqs_event_from_received(messages))
    assert failed == [by_key["batch/doc-4.txt"]]
    for key in keys:
        record = registry(stack, key)
        if key == "batch/doc-4.txt":
            assert record["status"] == "failed" and "HTTP 500" in record["error"]
        else:
            assert record["status"] == "indexed"
    # the nine are not redone: acknowledge them as the event source mapping would
    for message in messages:
        if message["MessageId"] not in failed:
            stack.aws.sqs.delete_message(QueueUrl=stack.aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
        else:
            stack.aws.sqs.change_message_visibility(QueueUrl=stack.aws.queue_url,
                                                    ReceiptHandle=message["ReceiptHandle"],
                                                    VisibilityTimeout=0)
    embeddings_before = len(fake_upstage.embedding_requests())
    rounds = stack.pump()
    assert len(rounds) == MAX_RECEIVE_COUNT - 1 and all(r for r in rounds)
    assert len(fake_upstage.embedding_requests()) - embeddings_before == 2 * (MAX_RECEIVE_COUNT - 1)
    [dead] = stack.aws.dlq_bodies()
    assert "doc-4.txt" in dead
    assert registry(stack, "batch/doc-4.txt")["status"] == "failed"

    # redrive after the cause is fixed (see docs/ingestion.md)
    poisoned["on"] = False
    stack.aws.sqs.send_message(QueueUrl=stack.aws.queue_url, MessageBody=dead)
    assert stack.pump() == [[]]
    assert registry(stack, "batch/doc-4.txt")["status"] == "indexed"


@pytest.mark.parametrize("store_kind", ["opensearch"])  # store-independent: one store is enough
def test_unsupported_and_oversized_objects_are_recorded_and_acknowledged(ready: Lambdas) -> None:
    stack = ready
    stack.aws.put("bin/tool.exe", b"MZ\x90\x00\x03")
    stack.aws.put("big/huge.txt", "word " * (MAX_OBJECT_BYTES // 4))
    stack.aws.put("docs/bad-meta.md", "# Fine\n\nA fine document.")
    stack.aws.put("docs/bad-meta.md.metadata.json", '{"metadataAttributes": {"tags": ["a", "b"]}}')
    assert stack.pump() == [[]]  # acknowledged: never retried
    assert "unsupported file type .exe" in registry(stack, "bin/tool.exe")["error"]
    assert "MAX_OBJECT_BYTES" in registry(stack, "big/huge.txt")["error"]
    bad = registry(stack, "docs/bad-meta.md")
    assert bad["status"] == "failed" and "metadata.json" in bad["error"]
    assert stack.aws.dlq_bodies() == []


@pytest.mark.parametrize("store_kind", ["opensearch"])  # the production store
def test_upstage_faults_never_leave_documents_half_indexed(
    ready: Lambdas, fake_upstage: FakeUpstage
) -> None:
    stack = ready
    texts = {f"chaos/doc-{i}.md": f"# Doc {i}\n\n" + f"Topic {i} sentence about item {i}. " * 40
             for i in range(5)}
    for key, text in texts.items():
        stack.aws.put(key, text)
    fake_upstage.delay_next(1.5, endpoint="embeddings")  # one client timeout (1 s)
    pump_under_chaos(stack, fake_upstage, texts, seed=7)
    assert fake_upstage.faults_injected > 0
    # overwrite some, delete one, under faults again
    for key in list(texts)[:2]:
        texts[key] = texts[key].replace("sentence", "revised line")
        stack.aws.put(key, texts[key])
    deleted = list(texts)[4]
    stack.aws.delete(deleted)
    del texts[deleted]
    pump_under_chaos(stack, fake_upstage, texts, seed=11)
    assert stack.aws.dlq_bodies() == []
    assert_index_equals_bucket(stack, texts)
    assert stack.aws.keys() == set(texts)


def pump_under_chaos(stack: Lambdas, fake: FakeUpstage, texts: dict[str, str], *, seed: int) -> None:
    """Batches under injected 429/500/503s; between batches (faults paused, so the checks'
    own queries succeed) no document may be half-written."""
    for round_number in range(10):
        fake.chaos(0.3, seed=seed + round_number, kinds=("429", "500", "503"))
        rounds = stack.pump(rounds=1)
        fake.chaos(0.0)
        check_no_half_documents(stack, texts)
        if not rounds:
            return
    stack.pump()


def check_no_half_documents(stack: Lambdas, texts: dict[str, str]) -> None:
    """At any moment a document is entirely one version (old or new), never a mix."""
    for key in texts:
        chunks = stack.chunks_of(key)
        assert len(versions(chunks)) <= 1, key
        status, record = stack.document(key)
        if status == 200 and chunks:
            assert len(chunks) == record["chunks"], key


@pytest.mark.parametrize("store_kind", ["opensearch"])
def test_opensearch_bulk_partial_failure_keeps_the_old_version(
    ready: Lambdas, opensearch: OpenSearchStub, store_kind: str
) -> None:
    stack = ready
    key = "bulk/doc.md"
    stack.aws.put(key, AURORA_V1)
    assert stack.pump() == [[]]
    old_chunks = stack.chunks_of(key)
    failing = {"on": True}

    def new_version_items(doc_id: str | None, source: Any) -> bool:
        return failing["on"] and isinstance(source, dict) and "Daejeon" in str(source.get("text", ""))

    opensearch.fail_items(new_version_items, 503, "unavailable_shards_exception")
    stack.aws.put(key, AURORA_V2)
    assert len(stack.pump(rounds=1)[0]) == 1  # the record failed, to be redelivered
    assert stack.chunks_of(key) == old_chunks  # the old version is intact, nothing half-written
    record = registry(stack, key)
    assert record["status"] == "failed" and "not written" in record["error"]
    failing["on"] = False
    assert stack.pump() == [[]]
    chunks = stack.chunks_of(key)
    assert chunks and all("Busan" not in c["text"] for c in chunks)
    assert registry(stack, key)["status"] == "indexed"


@pytest.mark.parametrize("store_kind", ["opensearch"])  # store-independent: one store is enough
def test_moto_records_without_sequencer_still_converge(ready: Lambdas) -> None:
    """Overwrite and delete in quick succession, consumed late and in one batch."""
    stack = ready
    key = "quick/doc.md"
    stack.aws.put(key, AURORA_V1)
    stack.aws.put(key, AURORA_V2)
    stack.aws.delete(key)
    stack.aws.put(key, KIMCHI + ".md edition")
    assert stack.pump() == [[]]
    chunks = stack.chunks_of(key)
    assert chunks and all("Kimchi" in c["text"] for c in chunks)
    assert registry(stack, key)["chunks"] == len(chunks)
