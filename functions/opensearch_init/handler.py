"""Custom resource handler (provider framework): create the OpenSearch index, alias, pipeline.

Create and Update run ``init_opensearch`` (idempotent). Delete does nothing: the index holds
the data and outlives the stack's custom resource. Fresh domain access policies and AOSS
data access policies take a while to apply, so the first calls can answer 403; those and
other transient failures are retried with exponential back-off until a deadline that
leaves the function time to report back to CloudFormation.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

LOGGER = logging.getLogger("opensearch_init")
LOGGER.setLevel(logging.INFO)

RETRYABLE_STATUS = frozenset({403, 408, 429, 500, 502, 503, 504})
MAX_WAIT_SECONDS = 540.0
SAFETY_MARGIN_SECONDS = 30.0
FIRST_DELAY_SECONDS = 2.0
MAX_DELAY_SECONDS = 30.0
MAX_DATA_CHARS = 3000  # CloudFormation caps a custom resource response at 4 KB

InitFunction = Callable[[], Mapping[str, object]]


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_wait_seconds: float = MAX_WAIT_SECONDS
    first_delay_seconds: float = FIRST_DELAY_SECONDS
    max_delay_seconds: float = MAX_DELAY_SECONDS


class InitFailed(RuntimeError):
    """Initialisation failed for good (or did not succeed before the deadline)."""


def _is_domain_error(exc: BaseException) -> bool:
    """solar_rag's own errors carry ``status``: the HTTP answer of the API (502 for any vector
    store failure), not a status OpenSearch returned."""
    return any(c.__name__ == "RagError" and c.__module__ == "solar_rag.errors" for c in type(exc).__mro__)


def _statuses(exc: BaseException) -> list[int]:
    """HTTP statuses found on the exception and the exceptions it was raised from."""
    found: list[int] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        attributes = ("status_code",) if _is_domain_error(current) else ("status_code", "status")
        for attribute in attributes:
            value = getattr(current, attribute, None)
            if isinstance(value, int) and 100 <= value <= 599:
                found.append(value)
        current = current.__cause__ or current.__context__
    return found


def is_retryable(exc: BaseException) -> bool:
    """403 right after a policy change, throttling, 5xx and connection failures.

    A status OpenSearch answered decides: a 400 (e.g. ``mapper_parsing_exception``) fails at
    once even when wrapped in an error the service would otherwise call retryable.
    """
    statuses = _statuses(exc)
    if statuses:
        return any(status in RETRYABLE_STATUS for status in statuses)
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if type(current).__name__ in {"ConnectionError", "ConnectionTimeout", "SSLError"}:
            return True
        if getattr(current, "retryable", False) is True:
            return True
        current = current.__cause__
    return False


def run_with_retry(
    init: InitFunction,
    *,
    deadline: float,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[float], float] = lambda delay: delay * random.uniform(0.8, 1.0),  # noqa: S311
) -> tuple[Mapping[str, object], int]:
    """``init()`` until it succeeds, fails permanently or ``deadline`` (a ``clock`` value).

    Returns the result and the number of attempts.
    """
    attempt = 0
    delay = policy.first_delay_seconds
    while True:
        attempt += 1
        try:
            return init(), attempt
        except Exception as exc:
            if not is_retryable(exc):
                raise InitFailed(f"OpenSearch initialisation failed: {exc}") from exc
            remaining = deadline - clock()
            if remaining <= delay:
                raise InitFailed(
                    f"OpenSearch initialisation still failing after {attempt} attempts: {exc}"
                ) from exc
            wait = jitter(delay)
            LOGGER.warning(
                json.dumps(
                    {
                        "message": "opensearch init attempt failed, retrying",
                        "attempt": attempt,
                        "retry_in_seconds": round(wait, 1),
                        "error": str(exc)[:500],
                        "statuses": _statuses(exc),
                    }
                )
            )
            sleep(wait)
            delay = min(delay * 2, policy.max_delay_seconds)


def physical_id(properties: Mapping[str, Any]) -> str:
    return f"opensearch-index:{properties.get('Target', 'domain')}:{properties.get('Index', '')}"


def response_data(result: Mapping[str, object], attempts: int) -> dict[str, str]:
    data = {key: value if isinstance(value, str) else json.dumps(value) for key, value in result.items()}
    data["Attempts"] = str(attempts)
    if len(json.dumps(data)) > MAX_DATA_CHARS:
        return {"Attempts": str(attempts), "Summary": json.dumps(result)[: MAX_DATA_CHARS // 2]}
    return data


def on_event(
    event: Mapping[str, Any],
    context: LambdaContext | None,
    *,
    init: InitFunction,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    request = event.get("RequestType")
    properties = event.get("ResourceProperties") or {}
    resource_id = event.get("PhysicalResourceId") or physical_id(properties)
    if request == "Delete":
        LOGGER.info(json.dumps({"message": "delete: index and data retained", "id": resource_id}))
        return {"PhysicalResourceId": resource_id}
    if request not in ("Create", "Update"):
        raise InitFailed(f"unknown RequestType {request!r}")
    budget = policy.max_wait_seconds
    if context is not None:
        budget = min(budget, context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS)
    result, attempts = run_with_retry(
        init, deadline=clock() + budget, policy=policy, sleep=sleep, clock=clock
    )
    LOGGER.info(
        json.dumps({"message": "opensearch initialised", "attempts": attempts, **result}, default=str)
    )
    # Stable per target and index: only a different index makes a new physical resource.
    return {"PhysicalResourceId": physical_id(properties), "Data": response_data(result, attempts)}


def _init_from_environment() -> Mapping[str, object]:
    from solar_rag.adapters.opensearch.bootstrap import init_opensearch
    from solar_rag.settings import Settings

    return init_opensearch(Settings())


def handler(event: Mapping[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    return on_event(event, context, init=_init_from_environment)
