"""The platform's limits, through the Lambda handlers: API Gateway's 29 s (every request has a
deadline and answers 504 JSON before it), Lambda's 6 MB events (the app's own 413 below
that), documents that cannot be indexed in time (202 ``queued``, then the S3 pipeline), and
presigned uploads."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from solar_rag.lambda_edge import runtime as lambda_runtime
from solar_rag.services import indexing, intake

from tests.fakes import events
from tests.fakes.upstage_server import FakeUpstage
from tests.integration.lambda_harness import BUCKET, MAX_OBJECT_BYTES, Lambdas

pytest_plugins = ("tests.integration.lambda_harness",)  # its fixtures


def invoke(stack: Lambdas, function: str, method: str, path: str, body: Any = None, *,
           timeout_ms: int = 30_000) -> tuple[int, Any, float]:
    handler = {"chat": stack.chat, "query": stack.query, "indexer": stack.indexer}[function]
    started = time.monotonic()
    response = handler(events.api_event(method, path, body=body),
                       events.lambda_context(f"solar-rag-{function}", timeout_ms=timeout_ms))
    return int(response["statusCode"]), events.response_json(response), time.monotonic() - started


@pytest.fixture
def patient_upstage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstage settings as deployed: a long timeout and several retries."""
    monkeypatch.setenv("UPSTAGE_TIMEOUT_SECONDS", "25")
    monkeypatch.setenv("UPSTAGE_MAX_RETRIES", "4")
    lambda_runtime.reset()


@pytest.mark.parametrize("store_kind", ["opensearch"], indirect=True)
def test_a_slow_upstage_is_a_504_json_within_the_budget(
        stack: Lambdas, fake_upstage: FakeUpstage, patient_upstage: None) -> None:
    # A 5 s invocation budget stands in for API Gateway's 29 s (same code path, shorter wait).
    fake_upstage.delay_next(30.0, times=10)
    status, body, elapsed = invoke(stack, "query", "POST", "/v1/query", {"query": "anything"},
                                   timeout_ms=5_000)
    assert status == 504, body
    assert "Upstage" in body["detail"]
    budget = 5.0 - lambda_runtime.HTTP_MARGIN_SECONDS
    assert budget - 0.2 <= elapsed < budget + 1.0, elapsed
    assert len(fake_upstage.embedding_requests()) == 1  # no attempt it could not finish


def test_http_budget_is_under_api_gateways_limit() -> None:
    assert lambda_runtime.http_budget(events.lambda_context(timeout_ms=900_000)) == pytest.approx(
        lambda_runtime.API_GATEWAY_TIMEOUT_SECONDS - lambda_runtime.HTTP_MARGIN_SECONDS)
    assert lambda_runtime.http_budget(events.lambda_context(timeout_ms=10_000)) <= 8.0
    assert lambda_runtime.queue_budget(events.lambda_context(timeout_ms=300_000)) == pytest.approx(
        300 - lambda_runtime.QUEUE_MARGIN_SECONDS, abs=0.5)


@pytest.mark.parametrize("store_kind", ["opensearch"], indirect=True)
def test_a_body_between_the_apps_limit_and_lambdas_6_mb_is_the_apps_413(stack: Lambdas) -> None:
    text = "x" * (lambda_runtime.LAMBDA_MAX_REQUEST_BYTES + 200_000)
    body = json.dumps({"documents": [{"id": "big", "text": text}]})
    event = events.api_event("POST", "/v1/documents", body=body)
    assert len(json.dumps(event)) < 6 * 1024 * 1024  # Lambda accepts the event...
    response = stack.indexer(event, events.lambda_context("solar-rag-indexer"))
    assert response["statusCode"] == 413  # ...and the app answers for itself
    assert str(lambda_runtime.LAMBDA_MAX_REQUEST_BYTES) in events.response_json(response)["detail"]


@pytest.mark.parametrize("store_kind", ["opensearch"], indirect=True)
def test_documents_that_cannot_finish_in_time_are_queued_then_indexed_by_the_pipeline(
        stack: Lambdas, monkeypatch: pytest.MonkeyPatch) -> None:
    # 600 tokens a minute: 10 a second, the rate the indexer's share allows in this test
    monkeypatch.setenv("UPSTAGE_TOKENS_PER_MINUTE", "600")
    lambda_runtime.reset()
    monkeypatch.setattr(indexing, "MAX_GROUP_CHARS", 1_000)
    small = {"id": "quick.md", "content_type": "text/markdown",
             "text": "# Quick\n\nQuokkas live on Rottnest Island."}
    large_text = " ".join(f"Sentence {i} says that narwhals have tusks." for i in range(60))
    large = {"id": "reports/slow.txt", "text": large_text, "metadata": {"team": "sea"}}
    # budget 10 s: the small group fits (~1.5 s + margin), the large one (~60 s) does not
    status, body, elapsed = invoke(stack, "indexer", "POST", "/v1/documents",
                                   {"documents": [small, large]}, timeout_ms=12_000)
    assert status == 202, body
    assert [(d["id"], d["status"]) for d in body["documents"]] == [
        ("quick.md", "indexed"), ("reports/slow.txt", "queued")]
    assert elapsed < 5.0
    assert stack.document("reports/slow.txt")[1]["status"] == "queued"
    bucket_keys = stack.aws.keys()
    queued = [k for k in bucket_keys if k.startswith(intake.QUEUE_PREFIX)]
    assert queued == [intake.queued_key("reports/slow.txt")]

    monkeypatch.setenv("UPSTAGE_TOKENS_PER_MINUTE", "100000000")  # the pipeline's own pace
    lambda_runtime.reset()
    assert stack.pump() and stack.aws.dlq_bodies() == []
    status, record = stack.document("reports/slow.txt")
    assert status == 200 and record["status"] == "indexed" and record["chunks"] > 0
    assert record["metadata"] == {"team": "sea"}
    bucket_keys = stack.aws.keys()
    assert not [k for k in bucket_keys if k.startswith(intake.QUEUE_PREFIX)]
    cited = stack.query_answer("narwhals tusks")["citations"]
    assert "reports/slow.txt" in {c["document_id"] for c in cited}
    # sending it again while indexed is unchanged, not queued
    status, body, _ = invoke(stack, "indexer", "POST", "/v1/documents", {"documents": [large]},
                             timeout_ms=12_000)
    assert status == 200 and body["documents"][0]["status"] == "unchanged"


@pytest.mark.parametrize("store_kind", ["opensearch"], indirect=True)
def test_presigned_upload_names_the_id_bounds_the_size_and_writes_the_sidecar(stack: Lambdas) -> None:
    status, ticket = stack.http("indexer", "POST", "/v1/uploads", {
        "id": "manuals/pump.pdf", "size": 1000, "content_type": "application/pdf",
        "metadata": {"team": "ops"}})
    assert status == 200, ticket
    assert ticket["document_id"] == "manuals/pump.pdf" and ticket["method"] == "POST"
    assert ticket["fields"]["key"] == "manuals/pump.pdf" and BUCKET in ticket["url"]
    policy = json.loads(base64.b64decode(ticket["fields"]["policy"]))
    assert ["content-length-range", 1, MAX_OBJECT_BYTES] in policy["conditions"]
    assert ticket["max_bytes"] == MAX_OBJECT_BYTES and ticket["expires_in"] == intake.UPLOAD_EXPIRY_SECONDS
    sidecar = stack.aws.s3.get_object(Bucket=BUCKET, Key="manuals/pump.pdf.metadata.json")["Body"].read()
    assert json.loads(sidecar) == {"metadataAttributes": {"team": "ops"}}


@pytest.mark.parametrize("store_kind", ["opensearch"], indirect=True)
@pytest.mark.parametrize(("body", "status", "words"), [
    ({"id": "notes.exe"}, 400, "unsupported file type"),
    ({"id": ".solar-rag/queued/x.json"}, 400, "reserved"),
    ({"id": "a.md.metadata.json"}, 400, "sidecar"),
    ({"id": "big.pdf", "size": MAX_OBJECT_BYTES + 1}, 413, "limit"),
    ({"id": "odd\ud800.md"}, 422, "unicode"),
])
def test_uploads_refuse_what_the_pipeline_would_not_index(
        stack: Lambdas, body: dict[str, Any], status: int, words: str) -> None:
    answer_status, answer = stack.http("indexer", "POST", "/v1/uploads", body)
    assert answer_status == status and words in str(answer["detail"]), answer


@pytest.mark.parametrize("store_kind", ["opensearch"], indirect=True)
def test_a_presigned_upload_is_indexed_by_the_pipeline_and_cited(stack: Lambdas) -> None:
    """Upload → S3 notification → SQS → indexer → cited, with the client's own POST.

    moto accepts the form upload (it does not enforce the policy's size range, which the
    test above reads from the policy itself)."""
    import requests

    status, ticket = stack.http("indexer", "POST", "/v1/uploads", {
        "id": "guides/kayak.md", "metadata": {"team": "outdoor"}})
    assert status == 200, ticket
    content = b"# Kayaks\n\nSea kayaks are longer than river kayaks and track straighter."
    response = requests.post(ticket["url"], data=ticket["fields"],
                             files={"file": ("kayak.md", content)}, timeout=10)
    assert response.status_code == 204
    assert stack.pump() and stack.aws.dlq_bodies() == []
    status, record = stack.document("guides/kayak.md")
    assert status == 200 and record["status"] == "indexed" and record["metadata"] == {"team": "outdoor"}
    cited = stack.query_answer("Which kayaks track straighter?")["citations"]
    assert cited and cited[0]["document_id"] == "guides/kayak.md"
