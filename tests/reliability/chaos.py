"""Chaos ingestion: a seeded storm of S3 changes through a misbehaving SQS into the real indexer.

What runs for real: the indexer Lambda handler (``functions/indexer/handler.py``, Powertools
batch processor with partial batch responses), S3 ingestion, indexing, the Upstage adapter
over HTTP against the fake Upstage server, the OpenSearch adapter against the OpenSearch stub,
and the DynamoDB registry, S3 and Secrets Manager under moto.

What is simulated here:

- **S3**: a seeded sequence of creates, overwrites, deletes and sidecar (``<key>.metadata.json``)
  puts and deletes over a set of keys, applied to the moto bucket; each change produces an S3
  notification with an increasing ``sequencer`` (moto sends none).
- **SQS** (standard queue semantics): at-least-once duplicates, delivery delays and random
  receive order (reordering), batches, a visibility timeout after which unacknowledged
  messages come back, ``batchItemFailures`` honoured, and a DLQ after ``maxReceiveCount``
  receives. Time is logical: one tick per invocation.
- **Crashes**: some invocations die mid-batch (a ``BaseException`` from inside a store write,
  before or after the chunks are written) or lose their response: their whole batch comes back.
  Some locks are left behind by "dead" writers (expired leases).
- **Faults**: the fake Upstage server answers ~20 % of calls with 429, 500, 503, a timeout or
  a dropped connection; the OpenSearch stub fails a share of bulk items.

After the queue drains, the DLQ is redriven with the faults off until it is empty. Then the
index must equal the bucket: for every live key exactly the chunks of its newest content (ids
and texts as the chunker makes them), nothing for deleted keys, and a registry that agrees
(status, content hash, chunk ids, newest sequencer).

Waiting is compressed: the Upstage client's back-off base is lowered to a few milliseconds and
timeouts are short; nothing else is changed.

Run the long variant: ``python -m tests.reliability.chaos --ops 5000 --keys 300 --seed 11``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solar_rag.domain import DocumentStatus

BUCKET = "rag-chaos-documents"
TABLE = "rag-chaos-documents"
SECRET_ID = "rag-chaos/upstage-api-key"
UPSTAGE_KEY = "up_chaos_8c1d5e3f9a7b2046ce11"
REGION = "us-east-1"
DIMENSIONS = 64
CHUNK_SIZE, CHUNK_OVERLAP = 64, 8
SIDECAR = ".metadata.json"
WORDS = ("aurora widget cobalt hinge battery warranty busan daejeon kimchi cabbage garlic ginger "
         "ledger invoice harbor lantern meadow quartz saffron tundra violet walnut yonder zephyr "
         "orbit pepper river summit timber umbra vessel willow anchor bramble cedar delta ember "
         "fable glacier hollow island jasper kelp lagoon mosaic nectar oasis prairie quiver").split()


@dataclass
class ChaosConfig:
    ops: int = 500
    keys: int = 100
    seed: int = 7
    upstage_fault_rate: float = 0.2
    bulk_item_fault_rate: float = 0.02
    duplicate_rate: float = 0.15
    crash_rate: float = 0.06
    lost_response_rate: float = 0.03
    stale_lock_rate: float = 0.02
    batch_size: int = 5
    max_receive_count: int = 3
    visibility_ticks: int = 4
    max_delivery_delay_ticks: int = 6
    ops_per_tick: float = 2.0
    upstage_timeout_seconds: float = 0.15
    quiet: bool = False


@dataclass
class Figures:
    operations: Counter[str] = field(default_factory=Counter)
    keys: int = 0
    messages_sent: int = 0
    duplicates_sent: int = 0
    invocations: int = 0
    records_delivered: int = 0
    redeliveries: int = 0
    batch_item_failures: int = 0
    crashes_mid_batch: int = 0
    lost_responses: int = 0
    stale_locks_left: int = 0
    moved_to_dlq: int = 0
    dlq_redrive_rounds: int = 0
    redriven: int = 0
    upstage_requests: int = 0
    upstage_faults_injected: int = 0
    upstage_client_retries: int = 0
    bulk_item_faults_injected: int = 0
    live_documents: int = 0
    deleted_keys: int = 0
    chunks_in_index: int = 0
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        values["operations"] = dict(self.operations)
        values["operations_total"] = sum(self.operations.values())
        values["final_mismatches"] = len(self.mismatches)
        values["mismatch_examples"] = self.mismatches[:10]
        del values["mismatches"]
        return values


class LambdaCrash(BaseException):
    """The function dies (timeout, out of memory): nothing in the handler may catch this."""


# --- SQS ---------------------------------------------------------------------------------------

@dataclass
class Message:
    id: str
    body: str
    visible_at: int
    receive_count: int = 0


class SimulatedQueue:
    """A standard SQS queue with a DLQ, on a logical clock."""

    def __init__(self, config: ChaosConfig, rng: random.Random, figures: Figures) -> None:
        self.config = config
        self.rng = rng
        self.figures = figures
        self.now = 0
        self.messages: dict[str, Message] = {}
        self.dlq: list[Message] = []
        self._ids = 0

    def send(self, body: Mapping[str, Any], *, may_duplicate: bool = True) -> None:
        copies = 2 if may_duplicate and self.rng.random() < self.config.duplicate_rate else 1
        for copy in range(copies):
            self._ids += 1
            delay = self.rng.randint(0, self.config.max_delivery_delay_ticks)
            message_id = f"m-{self._ids:06d}"
            self.messages[message_id] = Message(message_id, json.dumps(body), self.now + delay)
            self.figures.messages_sent += 1
            self.figures.duplicates_sent += copy

    def receive(self) -> list[Message]:
        visible = [m for m in self.messages.values() if m.visible_at <= self.now]
        self.rng.shuffle(visible)
        batch = []
        for message in visible[: self.config.batch_size]:
            if message.receive_count >= self.config.max_receive_count:
                # Received maxReceiveCount times without being deleted: to the DLQ.
                del self.messages[message.id]
                self.dlq.append(message)
                self.figures.moved_to_dlq += 1
                continue
            message.receive_count += 1
            if message.receive_count > 1:
                self.figures.redeliveries += 1
            message.visible_at = self.now + self.config.visibility_ticks
            batch.append(message)
        return batch

    def delete(self, message_ids: set[str]) -> None:
        for message_id in message_ids:
            self.messages.pop(message_id, None)

    def tick(self) -> None:
        self.now += 1

    def next_visible_in(self) -> int:
        return max(0, min(m.visible_at for m in self.messages.values()) - self.now)

    def redrive(self) -> int:
        moved = self.dlq
        self.dlq = []
        for message in moved:
            message.receive_count = 0
            message.visible_at = self.now
            self.messages[message.id] = message
        return len(moved)


# --- faults in the vector store writes ---------------------------------------------------------

class CrashingStore:
    """Wraps the function's VectorStore; an armed crash fires on the next write."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.armed: str | None = None

    @property
    def kind(self) -> str:
        return str(self.inner.kind)

    def _maybe_crash(self, point: str) -> None:
        if self.armed == point:
            self.armed = None
            raise LambdaCrash(f"simulated crash {point} a store write")

    def upsert_document(self, document_id: str, version: str, chunks: Any, *,
                        previous_chunk_ids: Any = ()) -> list[str]:
        self._maybe_crash("before")
        stored: list[str] = self.inner.upsert_document(document_id, version, chunks,
                                                       previous_chunk_ids=previous_chunk_ids)
        self._maybe_crash("after")
        return stored

    def upsert_documents(self, writes: Any) -> Any:
        self._maybe_crash("before")
        results = self.inner.upsert_documents(writes)
        self._maybe_crash("after")
        return results

    def delete_document(self, document_id: str, *, chunk_ids: Any = ()) -> int:
        self._maybe_crash("before")
        removed: int = self.inner.delete_document(document_id, chunk_ids=chunk_ids)
        self._maybe_crash("after")
        return removed

    def search(self, query: Any) -> Any:
        return self.inner.search(query)


# --- the S3 side -------------------------------------------------------------------------------

@dataclass
class KeyState:
    key: str
    live: bool = False
    revision: int = 0
    sidecar: bool = False
    sidecar_revision: int = 0
    last_sequencer: str | None = None


def make_keys(count: int, rng: random.Random) -> list[str]:
    special = ["docs/space name+plus/한글 노트.md", "docs/100% done?.txt", "docs/unsupported/blob.bin",
               "docs/unsupported/sheet.xlsx"]
    extensions = [".md", ".txt", ".html"]
    keys = special[: max(0, min(len(special), count // 25))]
    while len(keys) < count:
        keys.append(f"docs/{len(keys):04d}/{rng.choice(WORDS)}{rng.choice(extensions)}")
    return keys


def document_body(key: str, revision: int, rng: random.Random) -> bytes:
    marker = f"k{hashlib.sha1(key.encode()).hexdigest()[:6]}r{revision}"
    paragraphs = []
    for _ in range(rng.randint(1, 4)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 90))]
        paragraphs.append(" ".join(words).capitalize() + f". Marker {marker}.")
    if key.endswith(".html"):
        inner = "".join(f"<p>{p}</p>" for p in paragraphs)
        return (f"<html><head><title>{key} r{revision}</title></head><body><h1>Revision "
                f"{revision}</h1>{inner}</body></html>").encode()
    if key.endswith(".md"):
        return (f"# {key} revision {revision}\n\n" + "\n\n## Part\n\n".join(paragraphs)).encode()
    return "\n\n".join(paragraphs).encode()


def sidecar_body(revision: int, rng: random.Random) -> bytes:
    if rng.random() < 0.05:
        return b'{"metadataAttributes": {"team": '  # invalid: the document must be recorded failed
    attributes = {"team": rng.choice(["hr", "ops", "legal"]), "rev": revision,
                  "public": rng.random() < 0.5}
    return json.dumps({"metadataAttributes": attributes}).encode()


class Sequencers:
    def __init__(self) -> None:
        self._next = 0x0055AED6DCD90281E5

    def __call__(self) -> str:
        self._next += 1
        return f"{self._next:018X}"


# --- the run -----------------------------------------------------------------------------------

def environment(stub_url: str, fake_url: str, config: ChaosConfig) -> dict[str, str]:
    return {
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "UPSTAGE_SECRET_ID": SECRET_ID, "UPSTAGE_BASE_URL": fake_url,
        "EMBEDDING_DIMENSIONS": str(DIMENSIONS), "UPSTAGE_MAX_RETRIES": "1",
        "UPSTAGE_TIMEOUT_SECONDS": str(config.upstage_timeout_seconds),
        "UPSTAGE_REQUESTS_PER_MINUTE": "1000000", "UPSTAGE_TOKENS_PER_MINUTE": "1000000000",
        "CHUNK_SIZE_TOKENS": str(CHUNK_SIZE), "CHUNK_OVERLAP_TOKENS": str(CHUNK_OVERLAP),
        "DOCUMENTS_TABLE": TABLE, "DOCUMENTS_BUCKET": BUCKET,
        "VECTOR_STORE": "opensearch", "OPENSEARCH_URL": stub_url,
        "OPENSEARCH_INDEX": "rag-chunks", "OPENSEARCH_MAX_RETRIES": "0",
        "OPENSEARCH_TIMEOUT_SECONDS": "5",
        "POWERTOOLS_SERVICE_NAME": "solar-rag", "POWERTOOLS_METRICS_NAMESPACE": "SolarRagChaos",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "CRITICAL" if config.quiet else "INFO",
        "POWERTOOLS_METRICS_DISABLED": "true" if config.quiet else "false",
    }


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    removed = ("UPSTAGE_API_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
               "OPENSEARCH_ENDPOINT")
    saved = {name: os.environ.get(name) for name in [*values, *removed]}
    for name in removed:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def compressed_backoff() -> Iterator[None]:
    """Retries wait milliseconds instead of seconds: the run measures behaviour, not sleep."""
    from dataclasses import replace

    from solar_rag.resilience import retry

    saved = retry.UPSTAGE
    retry.UPSTAGE = saved.with_backoff(replace(saved.backoff, base_seconds=0.005))
    try:
        yield
    finally:
        retry.UPSTAGE = saved


class ChaosRun:
    def __init__(self, config: ChaosConfig, fake: Any, stub: Any, aws: AwsClients) -> None:
        from solar_rag.lambda_edge import runtime as lambda_runtime

        from tests.integration.lambda_harness import load_handler

        self.config = config
        self.fake = fake
        self.stub = stub
        self.s3 = aws.s3
        self.ddb = aws.ddb
        self.rng = random.Random(config.seed)
        self.figures = Figures()
        self.queue = SimulatedQueue(config, random.Random(config.seed + 1), self.figures)
        self.sequencer = Sequencers()
        self.keys = {k: KeyState(k) for k in make_keys(config.keys, self.rng)}
        self.figures.keys = len(self.keys)
        self.handler = load_handler("indexer")
        lambda_runtime.reset()  # importing the handler may have built (warmed) a container
        self.container = lambda_runtime.container()
        self.store = CrashingStore(self.container.store)
        self.container.__dict__["store"] = self.store  # before the indexing service is built
        self.bulk_rng = random.Random(config.seed + 2)
        self.bulk_faults_on = True
        self.crashes_on = True

    # -- S3 operations --

    def _notify(self, event_name: str, key: str, body: bytes | None) -> str:
        from tests.fakes import events

        sequencer = self.sequencer()
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest() if body is not None else None
        record = events.s3_record(event_name, key, bucket=BUCKET, sequencer=sequencer,
                                  size=len(body) if body is not None else None, etag=etag)
        self.queue.send(events.s3_notification(record))
        return sequencer

    def operate(self) -> None:
        state = self.rng.choice(list(self.keys.values()))
        roll = self.rng.random()
        if not state.live:
            if roll < 0.9:
                self._put(state, "create")
            else:
                self._delete(state, "delete_absent")
        elif roll < 0.45:
            self._put(state, "overwrite")
        elif roll < 0.70:
            self._delete(state, "delete")
        elif roll < 0.90:
            state.sidecar_revision += 1
            body = sidecar_body(state.sidecar_revision, self.rng)
            self.s3.put_object(Bucket=BUCKET, Key=state.key + SIDECAR, Body=body)
            state.sidecar = True
            self._notify("ObjectCreated:Put", state.key + SIDECAR, body)
            self.figures.operations["sidecar_put"] += 1
        elif state.sidecar:
            self.s3.delete_object(Bucket=BUCKET, Key=state.key + SIDECAR)
            state.sidecar = False
            self._notify("ObjectRemoved:Delete", state.key + SIDECAR, None)
            self.figures.operations["sidecar_delete"] += 1
        else:
            self._put(state, "overwrite")

    def _put(self, state: KeyState, kind: str) -> None:
        state.revision += 1
        body = document_body(state.key, state.revision, self.rng)
        self.s3.put_object(Bucket=BUCKET, Key=state.key, Body=body)
        state.live = True
        state.last_sequencer = self._notify("ObjectCreated:Put", state.key, body)
        self.figures.operations[kind] += 1

    def _delete(self, state: KeyState, kind: str) -> None:
        self.s3.delete_object(Bucket=BUCKET, Key=state.key)
        state.live = False
        state.last_sequencer = self._notify("ObjectRemoved:Delete", state.key, None)
        self.figures.operations[kind] += 1

    def leave_stale_lock(self) -> None:
        """A writer that died holding a lock: its lease has expired by now."""
        from solar_rag.adapters.dynamodb_registry import lock_key

        key = self.rng.choice(list(self.keys))
        self.ddb.put_item(TableName=TABLE, Item={
            "document_id": {"S": lock_key(key)}, "item_type": {"S": "lock"}, "id": {"S": key},
            "owner": {"S": "dead-writer"}, "expires_at": {"N": str(int(time.time()) - 5)}})
        self.figures.stale_locks_left += 1

    # -- delivery --

    def invoke(self, batch: list[Message]) -> None:
        from tests.fakes import events

        event = {"Records": [events.sqs_record(m.body, message_id=m.id,
                                               receive_count=m.receive_count) for m in batch]}
        self.figures.invocations += 1
        self.figures.records_delivered += len(batch)
        crash = self.crashes_on and self.rng.random() < self.config.crash_rate
        lost = self.crashes_on and self.rng.random() < self.config.lost_response_rate
        if crash:
            self.store.armed = self.rng.choice(["before", "after"])
        try:
            response = self.handler(event, events.lambda_context("solar-rag-indexer",
                                                                 timeout_ms=300_000))
        except LambdaCrash:
            self.figures.crashes_mid_batch += 1
            return  # nothing acknowledged: the whole batch comes back after the timeout
        finally:
            self.store.armed = None
        if lost:
            self.figures.lost_responses += 1
            return
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        self.figures.batch_item_failures += len(failed)
        self.queue.delete({m.id for m in batch} - failed)

    def step(self) -> None:
        batch = self.queue.receive()
        if batch:
            self.invoke(batch)
        self.queue.tick()

    def drain(self, *, limit_ticks: int = 1_000_000) -> None:
        for _ in range(limit_ticks):
            if not self.queue.messages:
                return
            if not any(m.visible_at <= self.queue.now for m in self.queue.messages.values()):
                self.queue.now += self.queue.next_visible_in()
            self.step()
        raise RuntimeError("the queue did not drain")

    def bulk_fault(self, doc_id: str | None, source: Mapping[str, Any] | None) -> bool:
        if not self.bulk_faults_on or source is None:
            return False
        if self.bulk_rng.random() < self.config.bulk_item_fault_rate:
            self.figures.bulk_item_faults_injected += 1
            return True
        return False

    def run(self) -> Figures:
        started = time.monotonic()
        config = self.config
        self.fake.chaos(config.upstage_fault_rate, seed=config.seed,
                        kinds=("429", "500", "503", "timeout", "drop"))
        self.stub.fail_items(self.bulk_fault, 503, "unavailable_shards_exception",
                             "injected: primary shard is not active")
        done = 0
        while done < config.ops:
            for _ in range(self.rng.randint(0, int(2 * config.ops_per_tick))):
                if done < config.ops:
                    self.operate()
                    done += 1
            if self.rng.random() < config.stale_lock_rate:
                self.leave_stale_lock()
            self.step()
        self.drain()
        # Faults off, then redrive the DLQ until it stays empty (as an operator would).
        self.fake.chaos(0.0)
        self.bulk_faults_on = False
        self.crashes_on = False
        while self.queue.dlq and self.figures.dlq_redrive_rounds < 10:
            self.figures.dlq_redrive_rounds += 1
            self.figures.redriven += self.queue.redrive()
            self.drain()
        client = self.container.upstage_client
        self.figures.upstage_requests = len(self.fake.snapshot())
        self.figures.upstage_faults_injected = self.fake.faults_injected
        self.figures.upstage_client_retries = client.stats.retries
        self.verify()
        self.figures.seconds = round(time.monotonic() - started, 1)
        return self.figures

    # -- the check: index == bucket --

    def verify(self) -> None:
        from solar_rag.adapters.dynamodb_registry import DynamoDbDocumentRegistry
        from solar_rag.parsing.content_types import BUILT_IN_EXTENSIONS
        from solar_rag.parsing.files import load_file
        from solar_rag.parsing.parsers import parse_document
        from solar_rag.parsing.sources import parse_sidecar
        from solar_rag.text.chunking import Chunker

        mismatches = self.figures.mismatches
        indexing = self.container.indexing_service
        chunker = Chunker(size_tokens=CHUNK_SIZE, overlap_tokens=CHUNK_OVERLAP)
        registry = DynamoDbDocumentRegistry(TABLE, dynamodb_client=self.ddb)
        stored: dict[str, dict[str, str]] = {}
        for source in self.stub.documents("rag-chunks").values():
            stored.setdefault(source["document_id"], {})[source["chunk_id"]] = source["text"]
        self.figures.chunks_in_index = sum(len(c) for c in stored.values())
        listed = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        bucket = {o["Key"] for o in listed}
        for key, state in self.keys.items():
            record = registry.get(key)
            if (key in bucket) != state.live:
                mismatches.append(f"{key}: simulation and bucket disagree")
            if not state.live:
                self.figures.deleted_keys += state.revision > 0
                if key in stored:
                    mismatches.append(f"{key}: deleted, but {len(stored[key])} chunks remain")
                if record is not None and record.status != DocumentStatus.DELETED:
                    mismatches.append(f"{key}: deleted, registry says {record.status}")
                if record is not None and record.sequencer != state.last_sequencer:
                    mismatches.append(f"{key}: registry sequencer {record.sequencer} is not the "
                                      f"newest {state.last_sequencer}")
                continue
            self.figures.live_documents += 1
            if record is None:
                mismatches.append(f"{key}: live, but not in the registry")
                continue
            if record.sequencer != state.last_sequencer:
                mismatches.append(f"{key}: registry sequencer {record.sequencer} is not the newest "
                                  f"{state.last_sequencer}")
            data = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            sidecar = None
            if key + SIDECAR in bucket:
                sidecar = self.s3.get_object(Bucket=BUCKET, Key=key + SIDECAR)["Body"].read()
            expected_failed = Path(key).suffix.lower() not in BUILT_IN_EXTENSIONS  # offline
            metadata = {}
            if sidecar is not None and not expected_failed:
                try:
                    metadata = parse_sidecar(sidecar)
                except Exception:
                    expected_failed = True
            if expected_failed:
                if record.status != DocumentStatus.FAILED or key in stored:
                    mismatches.append(f"{key}: expected failed without chunks, registry "
                                      f"{record.status}, {len(stored.get(key, {}))} chunks")
                continue
            doc = load_file(data, key, document_id=key, metadata=metadata,
                            source=f"s3://{BUCKET}/{key}")
            version = indexing.content_hash(doc)
            expected = {c.chunk_id: c.text for c in chunker.chunk(doc, parse_document(doc), version)}
            if stored.get(key, {}) != expected:
                have = stored.get(key, {})
                mismatches.append(f"{key}: {len(have)} chunks stored, {len(expected)} expected, "
                                  f"{len(set(have) - set(expected))} stale")
            if (record.status != DocumentStatus.INDEXED or record.content_hash != version
                    or record.chunks != len(expected) or sorted(record.chunk_ids) != sorted(expected)
                    or record.metadata != metadata):
                mismatches.append(f"{key}: registry {record.status} hash={record.content_hash == version}"
                                  f" chunks={record.chunks}/{len(expected)} error={record.error}")
        for document_id in set(stored) - set(self.keys):
            mismatches.append(f"{document_id}: chunks of an unknown document")
        live, _ = registry.list(limit=10_000)
        listed_ids = {r.id for r in live}
        expected_listed = {k for k, s in self.keys.items() if s.live}
        if listed_ids != expected_listed:
            mismatches.append(f"registry lists {len(listed_ids ^ expected_listed)} documents wrongly")


def run_chaos(config: ChaosConfig) -> Figures:
    """Set up servers and moto, run, and tear everything down."""
    from moto import mock_aws
    from solar_rag.adapters.opensearch import init_opensearch
    from solar_rag.lambda_edge import runtime as lambda_runtime
    from solar_rag.settings import Settings

    from tests.fakes.opensearch_stub import OpenSearchStub
    from tests.fakes.upstage_server import FakeUpstage

    with FakeUpstage(api_key=UPSTAGE_KEY, dimensions=DIMENSIONS) as fake, \
            OpenSearchStub("domain") as stub:
        fake.timeout_delay = config.upstage_timeout_seconds * 2
        fake.chaos_retry_after = 0.01
        stub.record_requests = False
        with patched_environ(environment(stub.url, fake.base_url, config)), compressed_backoff():
            lambda_runtime.reset()
            init_opensearch(Settings())
            try:
                with mock_aws():
                    return ChaosRun(config, fake, stub, create_aws()).run()
            finally:
                lambda_runtime.reset()


@dataclass
class AwsClients:
    s3: Any
    ddb: Any


def create_aws() -> AwsClients:
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "document_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "document_id", "AttributeType": "S"}])
    secrets.create_secret(Name=SECRET_ID, SecretString=UPSTAGE_KEY)
    return AwsClients(s3, ddb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # Powertools' "no application metrics" on every invocation
    config = ChaosConfig(ops=args.ops, keys=args.keys, seed=args.seed,
                         upstage_fault_rate=args.fault_rate, quiet=True)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # the functions' logs
        figures = run_chaos(config)
    print(json.dumps(figures.as_dict(), indent=2, sort_keys=True))
    return 0 if not figures.mismatches else 1


if __name__ == "__main__":
    sys.exit(main())

