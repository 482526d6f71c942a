"""Issue 12's platform limits, run as deployed: deadlines under API Gateway's 29 s, the app's
own 413 under Lambda's 6 MB, presigned uploads to the bucket, and queued indexing.

The deadline test waits for the real budget (min(29 s, remaining) − 2 s = 27 s): it is the
one figure the issue asks to measure in this tier."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from tests.deployment.harness import (
    GATEWAY_TIMEOUT_MS,
    LAMBDA_MAX_SYNC_PAYLOAD_BYTES,
    Deployed,
    document_path,
)

APP_LAMBDA_LIMIT = 4 * 1024 * 1024  # solar_rag.lambda_edge.runtime.LAMBDA_MAX_REQUEST_BYTES (and lambda_web's)
VPN = ("# VPN access\n\nThe corporate VPN uses WireGuard. New laptops get their VPN profile from the "
       "IT portal within two hours of enrolment.\n")


@pytest.fixture(scope="module")
def ready(deployed: Deployed) -> Deployed:
    deployed.set_secret()
    [init] = list(deployed.custom_resources())
    deployed.custom_resource(init, "Create")
    return deployed


def test_slow_upstage_gives_the_functions_504_before_the_gateway_gives_up(ready: Deployed) -> None:
    assert ready.http("POST", "/v1/search", {"query": "warm up", "mode": "vector"}).status == 200
    route, _ = ready.route_for("POST", "/v1/search") or (None, None)
    assert route is not None and route.timeout_ms == GATEWAY_TIMEOUT_MS and not route.streamed
    ready.upstage.latency = 45.0  # every attempt, above the budget
    try:
        started = time.monotonic()
        response = ready.http("POST", "/v1/search", {"query": "when is the drill?", "mode": "vector"}, strict=False)
        elapsed = time.monotonic() - started
    finally:
        ready.upstage.latency = 0.0
    assert not response.gateway, response
    assert response.status == 504 and response.headers["content-type"].startswith("application/json"), response
    assert "Upstage" in response.json()["detail"]
    # The budget is min(29 s, remaining) − 2 s: the answer comes after ~27 s, before the gateway's 29 s.
    assert 26.0 < elapsed < GATEWAY_TIMEOUT_MS / 1000, elapsed


@pytest.mark.parametrize("path", ["/v1/documents", "/v1/query"])
def test_a_body_between_the_app_limit_and_6_mb_gets_the_functions_413(ready: Deployed, path: str) -> None:
    text = "x" * (APP_LAMBDA_LIMIT + 512 * 1024)
    body = {"documents": [{"id": "big.md", "text": text}]} if path == "/v1/documents" else {"query": text}
    response = ready.http("POST", path, body)
    assert len(text) < LAMBDA_MAX_SYNC_PAYLOAD_BYTES - 100_000
    assert not response.gateway, response  # the function ran: not Lambda's refusal (bare 502)
    assert response.status == 413, response
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]


def test_presigned_upload_is_indexed_and_cited(ready: Deployed) -> None:
    data = VPN.encode()
    ticket = ready.http("POST", "/v1/uploads", {"id": "it/vpn.md", "size": len(data),
                                                "content_type": "text/markdown", "metadata": {"team": "it"}})
    assert ticket.status == 200, ticket
    upload = ticket.json()
    assert upload["document_id"] == "it/vpn.md" and upload["method"] == "POST"
    # The SDK presigns against the endpoint it was given (AWS_ENDPOINT_URL: moto), as it would
    # against the bucket's regional endpoint on AWS.
    assert upload["url"].startswith(ready.environment.moto_url), upload["url"]
    posted = httpx.post(upload["url"], data=upload["fields"],
                        files={"file": ("vpn.md", data, "text/markdown")}, timeout=30)
    assert posted.status_code in (200, 201, 204), posted.text
    # S3 enforces the policy's conditions; moto (5.x) does not, so they are read here.
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["content-length-range", upload["min_bytes"], upload["max_bytes"]] in policy["conditions"]
    assert upload["min_bytes"] <= len(data) <= upload["max_bytes"]
    batches = ready.deliver_notifications()
    assert batches and not [b for b in batches if b.failed_ids], batches
    status = ready.http("GET", document_path("it/vpn.md"))
    assert status.status == 200 and status.json()["status"] == "indexed", status
    assert status.json()["metadata"].get("team") == "it" or not upload["metadata_sidecar"]
    answer = ready.http("POST", "/v1/query", {"query": "Which protocol does the corporate VPN use?", "top_k": 3})
    assert answer.status == 200, answer
    assert answer.json()["citations"][0]["document_id"] == "it/vpn.md", answer.json()


def test_documents_too_large_for_the_budget_are_queued_then_indexed(ready: Deployed) -> None:
    filler = " ".join(f"Rack {i} in hall {i % 7} holds {i % 40} servers and is inspected on day {i % 28}."
                      for i in range(4_000))
    big = "# Data centre inventory\n\nThe disaster recovery drill takes place every October.\n\n" + filler
    # Over 27 s at the intake's estimate (10k chars/s + 3 s) yet under MAX_DOCUMENT_CHARS.
    assert 250_000 <= len(big) <= 2_000_000
    documents = [{"id": "ops/inventory.md", "text": big}]
    started = time.monotonic()
    response = ready.http("POST", "/v1/documents", {"documents": documents})
    elapsed = time.monotonic() - started
    assert response.status == 202, response
    assert [d["status"] for d in response.json()["documents"]] == ["queued"]
    assert elapsed < GATEWAY_TIMEOUT_MS / 1000
    assert ready.http("GET", document_path("ops/inventory.md")).json()["status"] == "queued"
    # The S3 pipeline takes ~60 s for this document here, nearly all in its embedding requests
    # (EmbedLatency ≈ 60 s for 299 chunks in 5 requests, while the fake answers such a request
    # in ~0.1 s: the client's tokens-per-minute limiter, 300k by default, waits for its window).
    batches = ready.deliver_notifications()
    assert batches and not [b for b in batches if b.failed_ids], batches
    status = ready.http("GET", document_path("ops/inventory.md")).json()
    assert status["status"] == "indexed" and status["chunks"] > 10, status
    answer = ready.http("POST", "/v1/search", {"query": "When does the disaster recovery drill take place?"})
    assert answer.json()["results"][0]["document_id"].startswith("ops/inventory"), answer.json()
