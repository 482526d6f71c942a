"""Shared set-up for the Lambda handler tests.

moto (S3, SQS, DynamoDB, Secrets Manager) + the fake Upstage server + a vector store (the
local store in a tmp dir, or the OpenSearch adapter against the stub server). The handlers
are loaded from ``functions/<name>/handler.py`` exactly as Lambda loads them, and invoked with
realistic API Gateway REST and SQS events (``tests/fakes/events.py``).

Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from solar_rag.lambda_edge import runtime as lambda_runtime

from tests.fakes import events
from tests.fakes.opensearch_stub import OpenSearchStub
from tests.fakes.upstage_server import FakeUpstage

ROOT = Path(__file__).resolve().parents[2]
REGION = events.REGION
SECRET_ID = "solar-rag/upstage-api-key"
UPSTAGE_KEY = "up_live_4f1b9c2e7a6d8b3c5e0f9a1d77"
TABLE = "solar-rag-documents"
BUCKET = events.BUCKET
QUEUE = "solar-rag-ingest"
DLQ = "solar-rag-ingest-dlq"
MAX_RECEIVE_COUNT = 3
DIMENSIONS = 64
MAX_OBJECT_BYTES = 64 * 1024

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def load_handler(name: str) -> Handler:
    """``functions/<name>/handler.py``'s ``handler``, imported once like Lambda does."""
    module_name = f"_lambda_{name}_handler"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "handler.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    handler: Handler = module.handler
    return handler


# --- servers (once per session) --------------------------------------------------------------------

@pytest.fixture(scope="session")
def fake_upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=UPSTAGE_KEY, dimensions=DIMENSIONS) as fake:
        yield fake


@pytest.fixture(scope="session")
def opensearch() -> Iterator[OpenSearchStub]:
    with OpenSearchStub("domain") as stub:
        yield stub


# --- environment and AWS ---------------------------------------------------------------------------

def configure_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: FakeUpstage,
                  stub: OpenSearchStub, store_kind: str) -> None:
    for name in ("UPSTAGE_API_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                 "OPENSEARCH_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    env = {
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "UPSTAGE_SECRET_ID": SECRET_ID, "UPSTAGE_BASE_URL": fake.base_url,
        "EMBEDDING_DIMENSIONS": str(DIMENSIONS), "UPSTAGE_MAX_RETRIES": "1",
        "UPSTAGE_TIMEOUT_SECONDS": "1.0", "UPSTAGE_REQUESTS_PER_MINUTE": "100000",
        "UPSTAGE_TOKENS_PER_MINUTE": "100000000",
        "CHUNK_SIZE_TOKENS": "64", "CHUNK_OVERLAP_TOKENS": "8",
        "DOCUMENTS_TABLE": TABLE, "DOCUMENTS_BUCKET": BUCKET,
        "MAX_OBJECT_BYTES": str(MAX_OBJECT_BYTES),
        "VECTOR_STORE": store_kind, "RAG_DATA_DIR": str(tmp_path / "rag"),
        "OPENSEARCH_URL": stub.url, "OPENSEARCH_INDEX": "rag-chunks",
        "OPENSEARCH_MAX_RETRIES": "0", "OPENSEARCH_TIMEOUT_SECONDS": "5",
        "POWERTOOLS_SERVICE_NAME": "solar-rag", "POWERTOOLS_METRICS_NAMESPACE": "SolarRagTest",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@dataclass
class Aws:
    s3: Any
    sqs: Any
    ddb: Any
    secrets: Any
    queue_url: str
    dlq_url: str

    def put(self, key: str, body: str | bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=BUCKET, Key=key)

    def keys(self) -> set[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        return {o["Key"] for o in listed if not o["Key"].endswith(".metadata.json")}

    def set_secret(self, value: str) -> None:
        self.secrets.put_secret_value(SecretId=SECRET_ID, SecretString=value)

    def registry_item(self, document_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.ddb.get_item(
            TableName=TABLE, Key={"document_id": {"S": document_id}}, ConsistentRead=True).get("Item")
        return item

    def dlq_bodies(self) -> list[str]:
        messages = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=0).get("Messages", [])
        return [m["Body"] for m in messages]


def create_aws(*, secret: str | None = UPSTAGE_KEY, notifications: bool = True) -> Aws:
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={
        "VisibilityTimeout": "180",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
    })["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    if notifications:
        s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": queue_arn,
                                     "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "document_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "document_id", "AttributeType": "S"}])
    ddb.update_time_to_live(TableName=TABLE, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires_at"})
    if secret is not None:
        secrets.create_secret(Name=SECRET_ID, SecretString=secret)
    return Aws(s3, sqs, ddb, secrets, queue_url, dlq_url)


# --- invoking the functions ------------------------------------------------------------------------

@dataclass
class Lambdas:
    aws: Aws
    chat: Handler = field(default_factory=lambda: load_handler("chat"))
    query: Handler = field(default_factory=lambda: load_handler("query"))
    indexer: Handler = field(default_factory=lambda: load_handler("indexer"))

    def http(self, function: str, method: str, path: str, body: Any = None,
             **kwargs: Any) -> tuple[int, Any]:
        handler = {"chat": self.chat, "query": self.query, "indexer": self.indexer}[function]
        response = handler(events.api_event(method, path, body=body, **kwargs),
                           events.lambda_context(f"solar-rag-{function}"))
        return int(response["statusCode"]), events.response_json(response)

    def index_batch(self, event: dict[str, Any]) -> list[str]:
        """Invoke the indexer with an SQS event; the message ids it reported failed."""
        response = self.indexer(event, events.lambda_context("solar-rag-indexer", timeout_ms=300_000))
        return [f["itemIdentifier"] for f in response["batchItemFailures"]]

    def pump(self, *, rounds: int = 10) -> list[list[str]]:
        """Drain the ingestion queue like the SQS event source mapping: batches of up to ten,
        successes deleted, failures visible again (as after the visibility timeout)."""
        failures_per_round: list[list[str]] = []
        sqs, url = self.aws.sqs, self.aws.queue_url
        for _ in range(rounds):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           AttributeNames=["ApproximateReceiveCount"]
                                           ).get("Messages", [])
            if not messages:
                break
            failed = set(self.index_batch(events.sqs_event_from_received(messages)))
            failures_per_round.append(sorted(failed))
            for message in messages:
                if message["MessageId"] in failed:
                    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                  VisibilityTimeout=0)
                else:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return failures_per_round

    def query_answer(self, text: str, **body: Any) -> dict[str, Any]:
        status, answer = self.http("query", "POST", "/v1/query", {"query": text, **body})
        assert status == 200, answer
        result: dict[str, Any] = answer
        return result

    def chunks_of(self, document_id: str) -> list[dict[str, Any]]:
        """Every stored chunk of a document (vector search filtered to it)."""
        status, body = self.http("query", "POST", "/v1/search", {
            "query": "document", "mode": "vector", "top_k": 50,
            "filters": {"document_id": document_id}})
        assert status == 200, body
        results: list[dict[str, Any]] = body["results"]
        return results

    def document(self, document_id: str) -> tuple[int, Any]:
        return self.http("indexer", "GET", events.document_path(document_id))


@pytest.fixture(params=["local", "opensearch"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_upstage: FakeUpstage,
               opensearch: OpenSearchStub, store_kind: str) -> Iterator[str]:
    configure_env(monkeypatch, tmp_path, fake_upstage, opensearch, store_kind)
    fake_upstage.reset()
    opensearch.reset()
    lambda_runtime.reset()
    if store_kind == "opensearch":
        from solar_rag.adapters.opensearch import init_opensearch
        from solar_rag.settings import Settings

        init_opensearch(Settings())
    yield store_kind
    lambda_runtime.reset()


@pytest.fixture
def stack(lambda_env: str) -> Iterator[Lambdas]:
    with mock_aws():
        aws = create_aws()
        yield Lambdas(aws)
        lambda_runtime.reset()  # clients were bound to this mock


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of captured stdout: Powertools log records (``level``) and metric
    blobs (``_aws``)."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines
