"""Secrets and data hygiene (issue 8.5): the Upstage key never appears in logs, responses,
errors or tracebacks, and logs at INFO carry no document text or question.

Everything is captured: every log record of every logger at DEBUG (``caplog``), stdout and
stderr (``capfd``: Powertools writes its JSON logs there), every response body of the error
paths, and the ``str``/``repr``/formatted traceback of every exception the services raise.
The fake Upstage server is made to echo the presented key in its errors (the worst case).
"""

from __future__ import annotations

import logging
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.errors import RagError
from solar_rag.lambda_edge import runtime as lambda_runtime
from solar_rag.settings import Settings

from tests.fakes import events
from tests.fakes.opensearch_stub import OpenSearchStub
from tests.fakes.upstage_server import FakeUpstage
from tests.reliability.conftest import Recorder

KEY = "up_hygiene_Zr8Kq2Lm5Nx7Pv4Tw"
DOC_TEXT = "The quartermaster's ledger lists eleven brass lanterns in the north annex."
QUESTION_TEXT = "How many brass lanterns does the quartermaster list"
CANARIES = ("quartermaster", "brass lanterns", "north annex")


def all_loggers_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("solar_rag", "openai", "httpx", "httpcore", "botocore", "urllib3", "uvicorn",
                 "opensearch", "aws_lambda_powertools", "fastapi", "starlette"):
        logging.getLogger(name).setLevel(logging.DEBUG)


def exception_texts(error: BaseException) -> list[str]:
    """What any logger or error tracker could print: str, repr, the formatted traceback, and
    the same for every chained exception, suppressed context included."""
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(getattr(current, "args", ()))]
        current = current.__cause__ or current.__context__
    return texts


@pytest.fixture
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=64, echo_key_in_errors=True) as fake:
        yield fake


@pytest.fixture
def container(upstage: FakeUpstage, tmp_path: Path) -> Container:
    settings = Settings(_env_file=None, upstage_api_key=KEY,
                        upstage_base_url=upstage.base_url, embedding_dimensions=64,
                        rag_data_dir=tmp_path / "data", upstage_timeout_seconds=0.2,
                        upstage_max_retries=1)
    return Container(settings)


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(lambda: container), raise_server_exceptions=False) as test_client:
        yield test_client


Scenario = tuple[str, Callable[[FakeUpstage], None]]
UPSTREAM_FAULTS: list[Scenario] = [
    ("wrong key: 401 echoing the presented key", lambda f: setattr(f, "api_key", "another-key")),
    ("500 whose message holds the key",
     lambda f: f.fail_next(500, times=4, message=f"internal error for key {KEY}")),
    ("400 whose message holds the key",
     lambda f: f.fail_next(400, times=4, message=f"bad request from {KEY}")),
    ("429 exhausted", lambda f: f.fail_next(429, times=4, headers={"retry-after-ms": "5"})),
    ("timeouts", lambda f: f.delay_next(0.4, times=4)),
    ("dropped connections", lambda f: f.drop_next(times=4)),
    ("model answer holding the key", lambda f: setattr(f, "chat_script", deque([f"ok {KEY} [1]"] * 4))),
]
REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/query", {"query": QUESTION_TEXT}),
    ("/v1/search", {"query": QUESTION_TEXT}),
    ("/v1/chat", {"messages": [{"role": "user", "content": QUESTION_TEXT}]}),
    ("/v1/embeddings", {"input": [QUESTION_TEXT], "kind": "query"}),
    ("/v1/documents", {"documents": [{"id": "new.md", "text": DOC_TEXT + " Again."}]}),
]


def test_no_key_in_any_response_log_or_exception_on_every_error_path(
        client: TestClient, container: Container, upstage: FakeUpstage,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
        figures: Recorder) -> None:
    all_loggers_at_debug(caplog)
    assert client.post("/v1/documents", json={"documents": [
        {"id": "ledger.md", "text": DOC_TEXT}]}).status_code == 200
    bodies: list[str] = []
    statuses: dict[str, int] = {}
    for name, inject in UPSTREAM_FAULTS:
        for path, body in REQUESTS:
            upstage.reset()
            upstage.api_key, upstage.chat_script = KEY, None
            inject(upstage)
            response = client.post(path, json=body)
            bodies.append(response.text + str(dict(response.headers)))
            statuses[f"{name} {path}"] = response.status_code
            assert response.status_code < 500 or response.json()["detail"] != "internal error", (
                name, path, response.text)
    # The same failures raised from the services: what a traceback or error tracker would show.
    exceptions: list[BaseException] = []
    for _name, inject in UPSTREAM_FAULTS[:-1]:
        upstage.reset()
        upstage.api_key = KEY
        inject(upstage)
        with pytest.raises(RagError) as raised:
            container.query_service.ask(QUESTION_TEXT)
        exceptions.append(raised.value)
    texts = [t for e in exceptions for t in exception_texts(e)]
    out, err = capfd.readouterr()
    logged = [record.getMessage() + str(record.__dict__) for record in caplog.records]
    figures(error_paths=len(statuses), exceptions_examined=len(exceptions),
            log_records_examined=len(logged), statuses=sorted(set(statuses.values())))
    haystacks = {"responses": bodies, "exceptions": texts, "logs": logged, "stdout": [out],
                 "stderr": [err]}
    for where, items in haystacks.items():
        leaked = [item[:300] for item in items if KEY in item]
        assert not leaked, (where, leaked[:3])
    assert statuses["wrong key: 401 echoing the presented key /v1/chat"] == 503  # a rejected key is a configuration problem (UpstageKeyRejected)
    assert statuses["model answer holding the key /v1/chat"] == 200
    assert {statuses[f"timeouts {p}"] for p, _ in REQUESTS} == {504}


def test_logs_at_info_carry_no_document_text_or_question(
        client: TestClient, upstage: FakeUpstage, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str], figures: Recorder) -> None:
    all_loggers_at_debug(caplog)
    steps = [
        client.post("/v1/documents", json={"documents": [{"id": "ledger.md", "text": DOC_TEXT}]}),
        client.post("/v1/documents", json={"documents": [{"id": "ledger.md", "text": DOC_TEXT}]}),
        client.post("/v1/query", json={"query": QUESTION_TEXT}),
        client.post("/v1/search", json={"query": QUESTION_TEXT, "mode": "keyword"}),
        client.post("/v1/chat", json={"messages": [{"role": "user", "content": QUESTION_TEXT}]}),
        client.get("/v1/documents/ledger.md"),
        client.delete("/v1/documents/ledger.md"),
    ]
    upstage.fail_next(500, times=4, message=f"could not process: {DOC_TEXT}")
    steps.append(client.post("/v1/documents", json={"documents": [
        {"id": "ledger2.md", "text": DOC_TEXT}]}))
    assert [s.status_code for s in steps[:-1]] == [200, 200, 200, 200, 200, 200, 204]
    assert steps[-1].status_code == 502
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    debug = [r for r in caplog.records if r.levelno < logging.INFO]
    leaking = [f"{r.name}:{r.levelname}:{r.getMessage()[:200]}" for r in info
               if any(c in r.getMessage() + str(r.__dict__.get("args")) for c in CANARIES)]
    figures(records_at_info_or_above=len(info), records_at_debug=len(debug),
            info_records_with_text=len(leaking))
    assert not leaking, leaking
    out, err = capfd.readouterr()
    assert not any(c in out + err for c in CANARIES)


def test_configuration_objects_do_not_show_the_key(container: Container,
                                                   upstage: FakeUpstage) -> None:
    container.search_service.search("warm up the client")  # builds the Upstage client
    shown = [repr(container.settings), str(container.settings),
             container.settings.model_dump_json(), repr(container.upstage_client),
             repr(container.chat_model), repr(container.embedder),
             repr(container.upstage_client.sdk)]
    assert not [s for s in shown if KEY in s]


# --- the Lambda functions: Secrets Manager, Powertools JSON logs on stdout -------------------

@pytest.fixture
def lambdas(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, upstage: FakeUpstage) -> Iterator[Any]:
    from tests.integration import lambda_harness as harness

    with OpenSearchStub("domain") as stub:
        harness.configure_env(monkeypatch, tmp_path, upstage, stub, "local")
        monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
        lambda_runtime.reset()
        with mock_aws():
            aws = harness.create_aws(secret=KEY, notifications=False)
            yield harness.Lambdas(aws)
            lambda_runtime.reset()


def test_lambda_functions_never_log_or_return_the_key(
        lambdas: Any, upstage: FakeUpstage, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture, figures: Recorder) -> None:
    all_loggers_at_debug(caplog)
    statuses = [lambdas.http("indexer", "POST", "/v1/documents",
                             {"documents": [{"id": "ledger.md", "text": DOC_TEXT}]})]
    bodies = []
    for name, inject in UPSTREAM_FAULTS:
        for function, path, body in [("query", "/v1/query", {"query": QUESTION_TEXT}),
                                     ("chat", "/v1/chat",
                                      {"messages": [{"role": "user", "content": QUESTION_TEXT}]})]:
            upstage.reset()
            upstage.api_key, upstage.chat_script = KEY, None
            inject(upstage)
            status, answer = lambdas.http(function, "POST", path, body)
            statuses.append((status, answer))
            bodies.append(str(answer))
            assert status != 500, (name, answer)
    # S3 ingestion with a rejected key: the SQS batch reports the failure, logs stay clean.
    upstage.reset()
    upstage.api_key = "another-key"
    lambdas.aws.put("notes/ledger.txt", DOC_TEXT)
    record = events.created("notes/ledger.txt", bucket=events.BUCKET, sequencer="0A")
    failed = lambdas.index_batch(events.sqs_event(events.s3_notification(record)))
    out, err = capfd.readouterr()
    figures(lambda_error_paths=len(statuses) - 1, stdout_log_lines=out.count("\n"))
    assert len(failed) == 0 or failed  # either way: recorded (non-retryable) or retried
    assert KEY not in out and KEY not in err
    assert not [b for b in bodies if KEY in b]
    assert not [r for r in caplog.records if KEY in r.getMessage() + str(r.__dict__)]
    assert '"level":"DEBUG"' in out or '"level":"INFO"' in out  # logs were really captured
