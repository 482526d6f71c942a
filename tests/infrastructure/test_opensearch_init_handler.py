"""The custom resource handler: retries, idempotency, Delete, response shape (fake init)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "opensearch_init" / "handler.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("opensearch_init_handler", HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


h = _load()


class HttpError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class Translated(Exception):
    """Like the adapter's NotConfigured raised ``from`` an AuthorizationException."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


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


def test_retries_403_after_fresh_policies_then_succeeds() -> None:
    clock, init = FakeClock(), FakeInit(translated_403(), HttpError(403), HttpError(503))
    response = h.on_event(event("Create"), Context(600_000), init=init, sleep=clock.sleep, clock=clock)
    assert init.calls == 4
    assert len(clock.sleeps) == 3
    assert clock.sleeps[1] > clock.sleeps[0]  # exponential back-off
    assert response["PhysicalResourceId"] == "opensearch-index:domain:rag-chunks"
    assert response["Data"]["Attempts"] == "4"
    assert response["Data"]["alias"] == "rag-chunks"
    assert response["Data"]["indices"] == '["rag-chunks-v1"]'


def test_non_retryable_error_fails_at_once() -> None:
    clock, init = FakeClock(), FakeInit(HttpError(400))
    with pytest.raises(h.InitFailed, match="HTTP 400"):
        h.on_event(event("Create"), None, init=init, sleep=clock.sleep, clock=clock)
    assert init.calls == 1 and clock.sleeps == []


def test_gives_up_at_the_deadline_with_the_last_error() -> None:
    clock = FakeClock()
    init = FakeInit(*[HttpError(403) for _ in range(1000)])
    policy = h.RetryPolicy(max_wait_seconds=120, first_delay_seconds=2, max_delay_seconds=30)
    with pytest.raises(h.InitFailed, match="still failing"):
        h.on_event(event("Create"), None, init=init, policy=policy, sleep=clock.sleep, clock=clock)
    assert sum(clock.sleeps) <= 120
    assert max(clock.sleeps) <= 30
    assert 4 <= init.calls <= 15


def test_deadline_respects_the_lambda_time_left() -> None:
    clock = FakeClock()
    init = FakeInit(*[HttpError(403) for _ in range(1000)])
    with pytest.raises(h.InitFailed):
        h.on_event(event("Update"), Context(60_000), init=init, sleep=clock.sleep, clock=clock)
    assert sum(clock.sleeps) <= 60 - h.SAFETY_MARGIN_SECONDS


def test_connection_errors_and_retryable_domain_errors_are_retried() -> None:
    class VectorStoreError(Exception):
        retryable = True

    clock = FakeClock()
    init = FakeInit(ConnectionError("refused"), VectorStoreError("cluster not ready"))
    response = h.on_event(
        event("Update", PhysicalResourceId="x"), None, init=init, sleep=clock.sleep, clock=clock
    )
    assert init.calls == 3
    assert response["PhysicalResourceId"] == "opensearch-index:domain:rag-chunks"


def test_update_runs_init_again_idempotently() -> None:
    clock, init = FakeClock(), FakeInit(result={"index_created": False, "alias": "rag-chunks"})
    first = h.on_event(event("Create"), None, init=init, sleep=clock.sleep, clock=clock)
    second = h.on_event(
        event("Update", PhysicalResourceId=first["PhysicalResourceId"]),
        None,
        init=init,
        sleep=clock.sleep,
        clock=clock,
    )
    assert init.calls == 2
    assert first["PhysicalResourceId"] == second["PhysicalResourceId"]
    assert second["Data"]["index_created"] == "false"


def test_delete_keeps_the_index_and_does_not_call_init() -> None:
    init = FakeInit()
    response = h.on_event(
        event("Delete", PhysicalResourceId="opensearch-index:domain:rag-chunks"), None, init=init
    )
    assert init.calls == 0
    assert response == {"PhysicalResourceId": "opensearch-index:domain:rag-chunks"}


def test_unknown_request_type_fails() -> None:
    with pytest.raises(h.InitFailed):
        h.on_event(event("Bogus"), None, init=FakeInit())


def test_large_results_are_summarised_under_the_response_limit() -> None:
    big = {f"key{i}": "x" * 200 for i in range(100)}
    data = h.response_data(big, attempts=1)
    assert len(str(data)) < 4096
    assert data["Attempts"] == "1"


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
