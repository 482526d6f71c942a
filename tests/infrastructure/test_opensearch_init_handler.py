"""The OpenSearch bootstrap custom resource as CDK's provider framework drives it: ``on_event``
names the resource, ``is_complete`` makes one attempt per call (fake init), the framework asks
again while it answers ``IsComplete: False``; the thin handlers in ``functions/``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from solar_rag.lambda_edge import opensearch_init as h
from solar_rag.resilience import retry

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_handler", FUNCTIONS / name / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class HttpError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class Translated(Exception):
    """Like the adapter's NotConfigured raised ``from`` an AuthorizationException."""


class FakeInit:
    """Fails with the given exceptions, then succeeds; counts calls."""

    def __init__(self, *failures: BaseException, result: Mapping[str, object] | None = None) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.result = result or {"alias": "rag-chunks", "indices": ["rag-chunks-v1"], "index_created": True}

    def __call__(self) -> Mapping[str, object]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return self.result


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def event(request: str, **extra: Any) -> dict[str, Any]:
    return {
        "RequestType": request,
        "ResourceProperties": {"Index": "rag-chunks", "Target": "domain", "Dimensions": "1024"},
        **extra,
    }


def translated_403() -> Exception:
    try:
        try:
            raise HttpError(403)
        except HttpError as exc:
            raise Translated("OpenSearch refused index check (403)") from exc
    except Translated as outer:
        return outer


class Framework:
    """CDK's provider framework as far as the handlers see it (provider-framework/framework.ts
    and its waiter state machine): onEvent, then isComplete at once and every query interval
    (played, not slept) until complete, a failure, or total_timeout."""

    def __init__(self, context: Context | None = None) -> None:
        self.context = context
        self.polls = 0

    def run(self, request: dict[str, Any], init: FakeInit) -> dict[str, Any]:
        result = h.on_event(request)
        merged = {**request, **result}
        max_polls = -(-retry.OPENSEARCH_INIT_TOTAL_TIMEOUT_SECONDS // retry.OPENSEARCH_INIT_QUERY_INTERVAL_SECONDS)
        for _ in range(max_polls + 1):  # the first call, then the state machine's retries
            self.polls += 1
            answer = h.is_complete(merged, self.context, init=init)
            if answer["IsComplete"]:
                assert set(answer) <= {"IsComplete", "Data"}
                return {**merged, "Data": {**answer.get("Data", {})}}
            assert "Data" not in answer  # the framework refuses Data with IsComplete false
        raise TimeoutError("Operation timed out")  # what the framework's onTimeout reports


def test_retries_403_after_fresh_policies_then_succeeds() -> None:
    init = FakeInit(translated_403(), HttpError(403), HttpError(503))
    framework = Framework(Context(170_000))
    response = framework.run(event("Create"), init)
    assert init.calls == 4 and framework.polls == 4
    assert response["PhysicalResourceId"] == "opensearch-index:domain:rag-chunks"
    assert response["Data"]["alias"] == "rag-chunks"
    assert response["Data"]["indices"] == '["rag-chunks-v1"]'


def test_one_attempt_per_call_and_no_sleeping() -> None:
    init = FakeInit(HttpError(503))
    assert h.is_complete(event("Create", PhysicalResourceId="x"), None, init=init) == {"IsComplete": False}
    assert init.calls == 1
    answer = h.is_complete(event("Create", PhysicalResourceId="x"), None, init=init)
    assert answer["IsComplete"] is True and init.calls == 2


def test_non_retryable_error_fails_at_once() -> None:
    init = FakeInit(HttpError(400))
    framework = Framework()
    with pytest.raises(h.InitFailed, match="HTTP 400"):
        framework.run(event("Create"), init)
    assert init.calls == 1 and framework.polls == 1


def test_gives_up_at_the_total_timeout() -> None:
    init = FakeInit(*[HttpError(403) for _ in range(1000)])
    framework = Framework()
    with pytest.raises(TimeoutError):
        framework.run(event("Create"), init)
    expected = retry.OPENSEARCH_INIT_TOTAL_TIMEOUT_SECONDS // retry.OPENSEARCH_INIT_QUERY_INTERVAL_SECONDS + 1
    assert init.calls == framework.polls == expected


def test_an_attempt_gets_the_invocation_time_left_as_its_deadline() -> None:
    from solar_rag.resilience import deadline

    seen: list[float] = []

    def init() -> dict[str, object]:
        current = deadline.current()
        assert current is not None
        seen.append(current.budget_seconds)
        return {"alias": "rag-chunks"}

    h.is_complete(event("Create", PhysicalResourceId="x"), Context(60_000), init=init)
    assert seen == [60 - h.SAFETY_MARGIN_SECONDS]


def test_an_attempt_that_runs_out_of_time_is_asked_again() -> None:
    from solar_rag.errors import DeadlineExceeded

    init = FakeInit(DeadlineExceeded("index creation could not finish"))
    assert h.is_complete(event("Update", PhysicalResourceId="x"), Context(30_000), init=init) == {
        "IsComplete": False}


def test_connection_errors_and_retryable_domain_errors_are_retried() -> None:
    class VectorStoreError(Exception):
        retryable = True

    init = FakeInit(ConnectionError("refused"), VectorStoreError("cluster not ready"))
    response = Framework().run(event("Update", PhysicalResourceId="x"), init)
    assert init.calls == 3
    assert response["PhysicalResourceId"] == "opensearch-index:domain:rag-chunks"


def test_update_runs_init_again_idempotently() -> None:
    init = FakeInit(result={"index_created": False, "alias": "rag-chunks"})
    first = Framework().run(event("Create"), init)
    second = Framework().run(event("Update", PhysicalResourceId=first["PhysicalResourceId"]), init)
    assert init.calls == 2
    assert first["PhysicalResourceId"] == second["PhysicalResourceId"]
    assert second["Data"]["index_created"] == "false"


def test_delete_keeps_the_index_and_does_not_call_init() -> None:
    init = FakeInit()
    response = Framework().run(event("Delete", PhysicalResourceId="opensearch-index:domain:rag-chunks"), init)
    assert init.calls == 0
    assert response["PhysicalResourceId"] == "opensearch-index:domain:rag-chunks"
    assert response["Data"] == {}


@pytest.mark.parametrize("call", [
    lambda request: h.on_event(request),
    lambda request: h.is_complete(request, None, init=FakeInit()),
])
def test_unknown_request_type_fails(call: Any) -> None:
    with pytest.raises(h.InitFailed):
        call(event("Bogus"))


def test_large_results_are_summarised_under_the_response_limit() -> None:
    big = {f"key{i}": "x" * 200 for i in range(100)}
    data = h.response_data(big)
    assert len(str(data)) < 4096
    assert set(data) == {"Summary"}


def test_the_function_handlers_are_thin_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    event_handler = _load("opensearch_init_event")
    assert event_handler.handler(event("Create"), None) == {
        "PhysicalResourceId": "opensearch-index:domain:rag-chunks"}
    init_handler = _load("opensearch_init")
    monkeypatch.setattr(init_handler, "_init_from_environment", FakeInit(HttpError(503)))
    assert init_handler.handler(event("Create", PhysicalResourceId="x"), Context(60_000)) == {
        "IsComplete": False}


def _translated(status_code: int) -> Exception:
    """The adapter's VectorStoreError raised from an opensearch-py error with ``status_code``."""
    from solar_rag.errors import VectorStoreError

    error = VectorStoreError(f"OpenSearch index creation failed ({status_code})")
    error.__cause__ = HttpError(status_code)
    return error


def test_a_domain_errors_api_status_is_not_an_upstream_status() -> None:
    """VectorStoreError maps to HTTP 502 in the API; a 400 from OpenSearch under it
    (mapper_parsing_exception) is permanent and must not be retried for minutes."""
    assert not h.is_retryable(_translated(400))
    assert h.is_retryable(_translated(503))
