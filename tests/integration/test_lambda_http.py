"""The three functions behind API Gateway REST (v1 proxy) events, under moto + fake Upstage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from solar_rag.lambda_edge import runtime as lambda_runtime

from tests.fakes import events
from tests.fakes.upstage_server import FakeUpstage
from tests.integration.lambda_harness import ROOT, SECRET_ID, UPSTAGE_KEY, Lambdas, json_lines

pytest_plugins = ("tests.integration.lambda_harness",)  # its fixtures

GUIDE = ("The Aurora widget is assembled in Busan. Every Aurora widget ships with a "
         "cobalt-blue casing and a two-year warranty.")


@pytest.fixture(params=["opensearch"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def emf_metrics(text: str) -> dict[str, list[float]]:
    """Metric values from the CloudWatch EMF blobs printed by Powertools."""
    found: dict[str, list[float]] = {}
    for blob in json_lines(text):
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                found.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return found


def test_chat_answers_with_correlation_id_metrics_and_no_key_in_logs(
    stack: Lambdas, fake_upstage: FakeUpstage, capsys: pytest.CaptureFixture[str]
) -> None:
    response = stack.chat(
        events.api_event("POST", "/v1/chat", body={"messages": [{"role": "user", "content": "Hello"}]},
                         request_id="req-chat-0001"),
        events.lambda_context("solar-rag-chat"))
    assert response["statusCode"] == 200
    body = events.response_json(response)
    assert body["answer"] == "FAKE: Hello"
    assert body["usage"]["total_tokens"] > 0
    assert fake_upstage.chat_requests()[0].headers["authorization"] == f"Bearer {UPSTAGE_KEY}"
    out = capsys.readouterr()
    records = [line for line in json_lines(out.out) if "level" in line]
    assert records and all(r.get("correlation_id") == "req-chat-0001" for r in records)
    request_log = next(r for r in records if r["message"] == "http request")
    assert request_log["status"] == 200 and request_log["path"] == "/v1/chat"
    assert "Hello" not in out.out  # no user text in logs
    metrics = emf_metrics(out.out)
    assert metrics["TokensUsed"] == [body["usage"]["total_tokens"]]
    assert len(metrics["GenerateLatency"]) == 1
    assert UPSTAGE_KEY not in out.out + out.err


def test_health_on_every_function(stack: Lambdas) -> None:
    for function in ("chat", "query", "indexer"):
        status, body = stack.http(function, "GET", "/v1/health")
        assert (status, body) == (200, {"status": "ok", "provider": "upstage",
                                        "vector_store": "opensearch"})


def test_each_function_serves_only_its_routes(stack: Lambdas) -> None:
    assert stack.http("chat", "POST", "/v1/query", {"query": "x"})[0] == 404
    assert stack.http("query", "POST", "/v1/chat", {"messages": []})[0] == 404
    assert stack.http("query", "GET", "/v1/documents")[0] == 404
    assert stack.http("indexer", "POST", "/v1/search", {"query": "x"})[0] == 404


def test_documents_with_slashes_in_ids_round_trip_and_query_cites_them(stack: Lambdas) -> None:
    doc_id = "reports/2024/q1.md"
    status, body = stack.http("indexer", "POST", "/v1/documents", {"documents": [
        {"id": doc_id, "title": "Q1 report", "text": GUIDE, "content_type": "text/markdown",
         "metadata": {"year": 2024}},
        {"id": "other.txt", "text": "Kimchi is fermented cabbage with chili."}]})
    assert status == 200, body
    assert [d["status"] for d in body["documents"]] == ["indexed", "indexed"]

    path = events.document_path(doc_id)
    assert path == "/v1/documents/reports%2F2024%2Fq1.md"
    status, shown = stack.http("indexer", "GET", path)
    assert status == 200 and shown["id"] == doc_id and shown["status"] == "indexed"
    assert shown["chunks"] >= 1 and shown["error"] is None

    answer = stack.query_answer("Where is the Aurora widget assembled?", top_k=2)
    assert answer["citations"][0]["document_id"] == doc_id
    assert "[1]" in answer["answer"]
    alias = stack.http("query", "POST", "/agent/query", {"query": "What colour is the casing?"})
    assert alias[0] == 200 and alias[1]["citations"][0]["document_id"] == doc_id

    status, found = stack.http("query", "POST", "/v1/search",
                               {"query": "cabbage", "filters": {"year": 2024}})
    assert status == 200 and {r["document_id"] for r in found["results"]} <= {doc_id}

    status, listed = stack.http("indexer", "GET", "/v1/documents", query={"limit": "1"})
    assert status == 200 and len(listed["documents"]) == 1 and listed["next_cursor"]

    assert stack.http("indexer", "DELETE", path)[0] == 204
    assert stack.http("indexer", "GET", path)[0] == 404
    assert stack.http("indexer", "DELETE", path)[0] == 404
    assert all(c["document_id"] != doc_id for c in
               stack.query_answer("Aurora widget Busan")["citations"])


def test_agent_knowledge_alias_and_base64_body(stack: Lambdas) -> None:
    event = events.api_event("POST", "/agent/knowledge", base64_body=True,
                             body={"documents": [{"id": "kb-1", "text": "Tea grows in Boseong."}]})
    response = stack.indexer(event, events.lambda_context("solar-rag-indexer", timeout_ms=300_000))
    assert response["statusCode"] == 200
    assert events.response_json(response)["documents"][0]["id"] == "kb-1"
    # the registry's lock lease outlives the function timeout learned from the first call
    assert lambda_runtime.container().registry.lease_seconds == 360  # type: ignore[attr-defined]


def test_embeddings_endpoint(stack: Lambdas) -> None:
    status, body = stack.http("query", "POST", "/v1/embeddings", {"input": ["a", "b"], "kind": "passage"})
    assert status == 200 and body["dimensions"] == 64 and len(body["data"]) == 2


def test_validation_and_upstream_errors_are_json_without_traces(
    stack: Lambdas, fake_upstage: FakeUpstage
) -> None:
    status, body = stack.http("chat", "POST", "/v1/chat", {"messages": "nope"})
    assert status == 422 and isinstance(body["detail"], list)
    fake_upstage.fail_next(429, times=2, headers={"Retry-After": "0"})
    status, body = stack.http("chat", "POST", "/v1/chat",
                              {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 429 and "rate limit" in body["detail"]
    status, body = stack.http("chat", "POST", "/v1/chat", "{not json")
    assert status == 422


@pytest.mark.parametrize("secret", ["missing", "no value", "   "])
def test_missing_or_empty_secret_is_a_503_naming_it(
    stack: Lambdas, secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.aws.secrets.delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    if secret == "no value":  # created (e.g. by CDK) but never given a value
        stack.aws.secrets.create_secret(Name=SECRET_ID)
    elif secret != "missing":
        stack.aws.secrets.create_secret(Name=SECRET_ID, SecretString=secret)
    status, body = stack.http("chat", "POST", "/v1/chat", {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 503
    assert SECRET_ID in body["detail"] and "Traceback" not in body["detail"]
    # the query function reports the same; health still works (no secret needed)
    assert stack.http("query", "POST", "/v1/query", {"query": "anything"})[0] == 503
    assert stack.http("chat", "GET", "/v1/health")[0] == 200
    # once the secret is set, the next request works without a cold start
    if secret == "missing":
        stack.aws.secrets.create_secret(Name=SECRET_ID, SecretString=UPSTAGE_KEY)
    else:
        stack.aws.set_secret(UPSTAGE_KEY)
    status, body = stack.http("chat", "POST", "/v1/chat", {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 200, body
    out = capsys.readouterr()
    assert UPSTAGE_KEY not in out.out + out.err


def test_secret_read_once_per_container(stack: Lambdas) -> None:
    """The key is looked up per request, but Secrets Manager is called once (cached)."""
    from solar_rag.adapters.aws_clients import client

    calls: list[str] = []
    client("secretsmanager").meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: calls.append("get"))
    for _ in range(3):
        assert stack.http("chat", "POST", "/v1/chat",
                          {"messages": [{"role": "user", "content": "hi"}]})[0] == 200
    assert calls == ["get"]


def test_placeholder_secret_is_a_503_until_the_key_is_stored(stack: Lambdas) -> None:
    placeholder = json.dumps({"note": "placeholder: store the Upstage API key with put-secret-value",
                              "placeholder": "Zr8pQ2x7Lm4nV6bT1yW3cK9dF5gH0jS2"})
    stack.aws.set_secret(placeholder)
    status, body = stack.http("chat", "POST", "/v1/chat",
                              {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 503 and "still holds the placeholder" in body["detail"]
    assert SECRET_ID in body["detail"] and "Zr8pQ2x7" not in json.dumps(body)
    stack.aws.set_secret(json.dumps({"api_key": UPSTAGE_KEY}))  # JSON secrets work too
    status, body = stack.http("chat", "POST", "/v1/chat",
                              {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 200, body


def test_wrong_key_in_secret_is_not_echoed(stack: Lambdas, fake_upstage: FakeUpstage,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    wrong = "up_wrong_0000000000000000000000"
    stack.aws.set_secret(wrong)
    status, body = stack.http("chat", "POST", "/v1/chat",
                              {"messages": [{"role": "user", "content": "hi"}]})
    assert status == 503 and "rejected the API key" in body["detail"]
    out = capsys.readouterr()
    assert any(r.get("level") == "WARNING" for r in json_lines(out.out))  # the failure is logged
    for text in (out.out, out.err, json.dumps(body)):
        assert wrong not in text


CHILD = r"""
import json, sys, time
sys.path[:0] = [sys.argv[1]]
import importlib.util
spec = importlib.util.spec_from_file_location("handler", sys.argv[2])
module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
from tests.fakes import events
answers = []
for method, path, body in json.loads(sys.argv[3]):
    r = module.handler(events.api_event(method, path, body=body), events.lambda_context())
    answers.append(r["statusCode"])
watched = ("opensearchpy", "numpy", "solar_rag.adapters.s3_source", "solar_rag.adapters.local_store",
           "solar_rag.adapters.opensearch", "solar_rag.adapters.dynamodb_registry",
           "solar_rag.services.s3_ingestion", "solar_rag.parsing.files", "solar_rag.parsing.parsers",
           "pypdf", "openai", "boto3")
print(json.dumps({"answers": answers, "loaded": sorted(m for m in watched if m in sys.modules)}))
"""


def run_child(function: str, calls: list[tuple[str, str, Any]], env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(ROOT / "functions" / function / "handler.py"),
         json.dumps(calls)],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_chat_and_query_functions_import_only_what_they_use(
    fake_upstage: FakeUpstage, opensearch: Any, tmp_path: Any
) -> None:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        import boto3

        boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint,
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     ).create_secret(Name=SECRET_ID, SecretString=UPSTAGE_KEY)
        fake_upstage.reset()
        opensearch.reset()
        from solar_rag.adapters.opensearch import init_opensearch
        from solar_rag.settings import Settings

        init_opensearch(Settings(vector_store="opensearch", opensearch_url=opensearch.url,
                                 embedding_dimensions=64))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "UPSTAGE_", "OPENSEARCH_"))}
        env.update({"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "UPSTAGE_SECRET_ID": SECRET_ID, "UPSTAGE_BASE_URL": fake_upstage.base_url,
                    "EMBEDDING_DIMENSIONS": "64", "VECTOR_STORE": "opensearch",
                    "OPENSEARCH_URL": opensearch.url, "POWERTOOLS_TRACE_DISABLED": "true",
                    "POWERTOOLS_METRICS_NAMESPACE": "SolarRagTest", "PYTHONDONTWRITEBYTECODE": "1"})
        chat = run_child("chat", [("GET", "/v1/health", None),
                                  ("POST", "/v1/chat", {"messages": [{"role": "user", "content": "hi"}]})],
                         {**env, "RAG_DATA_DIR": str(tmp_path)})
        assert chat["answers"] == [200, 200]
        assert chat["loaded"] == ["boto3", "openai"], chat
        query = run_child("query", [("POST", "/v1/search", {"query": "anything", "mode": "keyword"})],
                          {**env, "RAG_DATA_DIR": str(tmp_path)})
        assert query["answers"] == [200], query
        assert "numpy" not in query["loaded"] and "solar_rag.adapters.s3_source" not in query["loaded"]
        assert "solar_rag.adapters.dynamodb_registry" not in query["loaded"]
    finally:
        server.stop()
        lambda_runtime.reset()


def test_init_builds_only_what_each_function_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    """``warm`` builds the routers' services: chat never builds a store, a registry or S3."""
    from solar_rag.api.app import services_for
    from solar_rag.composition import Container
    from solar_rag.settings import Settings

    monkeypatch.chdir(ROOT / "tests")  # no .env
    for name in ("UPSTAGE_API_KEY", "UPSTAGE_SECRET_ID", "VECTOR_STORE", "DOCUMENTS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    current = Settings(upstage_secret_id=SECRET_ID, vector_store="opensearch",
                       opensearch_url="http://127.0.0.1:9", documents_table="t")
    chat = Container(current)
    chat.warm(services_for(("health", "chat")))
    assert {"chat_service", "chat_model", "upstage_client"} <= set(chat.__dict__)
    assert not {"store", "registry", "embedder", "object_store"} & set(chat.__dict__)
    query = Container(current)
    query.warm(services_for(("health", "query")))
    assert {"query_service", "search_service", "store", "embedder"} <= set(query.__dict__)
    assert not {"registry", "object_store", "indexing_service"} & set(query.__dict__)


def test_invalid_configuration_is_a_503_naming_the_variable(
    stack: Lambdas, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "lots")
    lambda_runtime.reset()
    status, body = stack.http("query", "GET", "/v1/health")
    assert status == 503 and "EMBEDDING_DIMENSIONS" in body["detail"] and "lots" not in body["detail"]


def test_works_after_something_in_the_process_ran_asyncio_run(stack: Lambdas) -> None:
    """asyncio.run() leaves no current loop; Mangum's get_event_loop() then raised (a 500)."""
    import asyncio

    async def noop() -> None:
        return None

    asyncio.run(noop())
    assert stack.http("chat", "GET", "/v1/health")[0] == 200
    asyncio.get_event_loop().close()  # even a closed current loop
    assert stack.http("query", "GET", "/v1/health")[0] == 200
