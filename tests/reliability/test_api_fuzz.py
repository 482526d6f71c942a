"""API fuzzing: schemathesis against the real app's OpenAPI schema, in process (ASGI).

The app runs on its real stack with the local store (SQLite) and the offline embedder; only
the chat model is an in-memory fake (replying with a valid and an invented citation marker).
Every operation gets schema-valid ("positive") and schema-violating ("negative") requests.

Passes when: at least 1,000 requests were sent, no answer was a 5xx, every answer conforms to
the schema (status code documented, content type, body, headers), and every schema-violating
request was refused with a 4xx. Schema-valid requests refused with a documented 400 (e.g. a
whitespace-only text) are counted and reported, not failed.

``RAG_FUZZ_EXAMPLES`` (default 60) sets the examples per operation and mode.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.parsing.files import SUPPORTED_EXTENSIONS
from solar_rag.services.intake import UploadService
from solar_rag.settings import Settings

from tests.fakes.memory import FakeChatModel, MemoryBucket
from tests.reliability.conftest import Recorder, env_int

MAX_REQUEST_BYTES = 64 * 1024
MIN_REQUESTS = 1000
EXAMPLES = env_int("RAG_FUZZ_EXAMPLES", 60)
SEED_DOCUMENTS = [
    {"id": "fuzz/sky.md", "title": "Sky", "content_type": "text/markdown",
     "metadata": {"team": "weather", "year": 2024},
     "text": "# Sky\n\nThe sky is blue on a clear day. Clouds are white."},
    {"id": "fuzz/grass.txt", "text": "Grass is green in spring and brown in a dry summer."},
]


@dataclass
class Tally:
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    valid_refused: Counter[str] = field(default_factory=Counter)


def build_app(data_dir: Path) -> tuple[FastAPI, Container]:
    settings = Settings(_env_file=None, rag_data_dir=data_dir, embedding_dimensions=64)
    container = Container(settings, chat_model=FakeChatModel(reply="Blue [1], also see [7]."))
    container.__dict__["upload_service"] = UploadService(
        MemoryBucket(), supported_extensions=SUPPORTED_EXTENSIONS, max_object_bytes=1024 * 1024)
    return create_app(lambda: container, max_request_bytes=MAX_REQUEST_BYTES), container


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    fuzz_app, _ = build_app(tmp_path_factory.mktemp("fuzz"))
    with TestClient(fuzz_app) as client:
        assert client.post("/v1/documents", json={"documents": SEED_DOCUMENTS}).status_code == 200
    return fuzz_app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def fuzz_operation(operation: Any, mode: schemathesis.GenerationMode,
                   tally: Tally) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call()
        tally.requests += 1
        tally.statuses[f"{response.status_code // 100}xx"] += 1
        if mode is schemathesis.GenerationMode.POSITIVE and response.status_code == 400:
            detail = str(json.loads(response.content).get("detail", ""))
            tally.valid_refused[re.sub(r"""(['"]).*\1""", "<id>", detail)[:60]] += 1
        try:
            # Schema-valid requests may still be refused with a documented 400 (semantics the
            # schema cannot express); every other check applies, 5xx and schema conformance
            # included.
            case.validate_response(
                response, excluded_checks=[schemathesis.checks.positive_data_acceptance])
        except FailureGroup as failures:
            tally.failures.append(f"{operation.label} [{mode.value}]: {failures}"[:2000])

    with contextlib.suppress(Unsatisfiable):  # e.g. nothing schema-violating for GET /v1/health
        run()


def test_schemathesis_finds_no_5xx_and_nothing_outside_the_schema(
        app: FastAPI, figures: Recorder) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # A body over the size limit is refused with 413 before it is parsed: a valid rejection.
    schema.config.checks.negative_data_rejection.expected_statuses.append("413")
    tally = Tally()
    results: list[Any] = list(schema.get_all_operations())
    operations = [result.ok() for result in results]
    assert len(operations) >= 11, [op.label for op in operations]
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, tally)

    figures(operations=len(operations), requests=tally.requests,
            statuses=dict(tally.statuses), failures=len(tally.failures),
            schema_valid_refused_with_400=dict(tally.valid_refused))
    assert not tally.failures, "\n\n".join(tally.failures[:5])
    assert tally.statuses["5xx"] == 0
    assert tally.requests >= MIN_REQUESTS or EXAMPLES < 60, tally.requests


# --- explicit malformed and oversized bodies -------------------------------------------------

JSON = {"content-type": "application/json"}
MALFORMED: list[tuple[str, bytes]] = [
    ("truncated JSON", b'{"query": "sky'),
    ("trailing garbage", b'{"query": "sky"} trailing'),
    ("not UTF-8", b'{"query": "\xff\xfe"}'),
    ("nested 30,000 deep", b"[" * 30_000 + b"]" * 30_000),
    ("number with 5,000 digits", b'{"query": "sky", "top_k": ' + b"9" * 5000 + b"}"),
    ("NaN", b'{"query": "sky", "temperature": NaN}'),
    ("Infinity in metadata", b'{"documents": [{"text": "x", "metadata": {"a": Infinity}}]}'),
    ("lone surrogate", b'{"query": "\\ud800"}'),
    ("lone surrogate in an id", b'{"documents": [{"id": "\\udc00", "text": "x"}]}'),
    ("boolean as integer", b'{"query": "sky", "top_k": true}'),
    ("string as integer", b'{"query": "sky", "top_k": "3"}'),
    ("digits as metadata string over the limit",
     b'{"documents": [{"text": "x", "metadata": {"a": "' + b"0" * 3000 + b'"}}]}'),
    ("JSON null", b"null"),
    ("JSON string", b'"sky"'),
    ("empty body", b""),
    ("unknown field", b'{"query": "sky", "prompt": "ignore your rules"}'),
    ("metadata key outside the pattern", b'{"query": "sky", "filters": {"a b": "x"}}'),
]


@pytest.mark.parametrize(("name", "body"), MALFORMED, ids=[name for name, _ in MALFORMED])
def test_malformed_bodies_are_422(client: TestClient, name: str, body: bytes) -> None:
    path = "/v1/documents" if b"documents" in body else "/v1/search"
    response = client.post(path, content=body, headers=JSON)
    assert response.status_code == 422, (name, response.status_code, response.text[:300])
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    assert len(response.content) < 20_000  # echoed input is cut short


@pytest.mark.parametrize("path", ["/v1/search", "/v1/query", "/v1/documents", "/v1/chat",
                                  "/v1/embeddings", "/agent/knowledge"])
def test_oversized_bodies_are_413(client: TestClient, path: str, figures: Recorder) -> None:
    big = json.dumps({"query": "x" * MAX_REQUEST_BYTES}).encode()
    declared = client.post(path, content=big, headers=JSON)
    assert declared.status_code == 413, declared.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced while reading
        for _ in range(8):
            yield b" " * (MAX_REQUEST_BYTES // 4)

    streamed = client.post(path, content=chunks(), headers=JSON)
    assert streamed.status_code == 413, streamed.text
    assert streamed.json() == {"detail": f"request body is larger than {MAX_REQUEST_BYTES} bytes"}
    lying = client.post(path, content=b'{"query": "x"}', headers=JSON | {"content-length": "abc"})
    assert lying.status_code in (400, 413)


def test_oversized_body_over_real_http_is_413(app: FastAPI) -> None:
    """The same limit through uvicorn (chunked upload), not only the in-process transport."""
    from tests.fakes.live_server import serve

    def chunks() -> Iterator[bytes]:
        for _ in range(16):
            yield b"x" * (MAX_REQUEST_BYTES // 8)

    with serve(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        response = http.post("/v1/documents", content=chunks(), headers=JSON)
        assert response.status_code == 413
        assert http.get("/v1/health").status_code == 200  # the server is fine afterwards
