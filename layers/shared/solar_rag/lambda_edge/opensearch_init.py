"""The OpenSearch bootstrap custom resource, for CDK's provider framework.

The framework does the waiting (``infra_cdk/constructs/vector_store.py``): ``on_event`` only
names the resource; the framework then calls ``is_complete`` at once and again every
``query_interval`` until it answers complete, raises, or ``total_timeout`` has passed
(``solar_rag.resilience.retry.OPENSEARCH_INIT_*``). Each ``is_complete`` call makes one
attempt at ``init_opensearch`` (idempotent: index, alias, search pipeline):

- success: complete, with what was created as the resource's ``Data``;
- a transient failure (403 while fresh domain or AOSS access policies apply, throttling, 5xx,
  connection errors): not complete yet, the framework asks again;
- any other failure (a 400 such as ``mapper_parsing_exception``): ``InitFailed``, and
  CloudFormation hears of it at once instead of after the total timeout.

Delete does nothing: the index holds the data and outlives the stack's custom resource.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from solar_rag.resilience import deadline, retry

LOGGER = logging.getLogger("opensearch_init")
LOGGER.setLevel(logging.INFO)

SAFETY_MARGIN_SECONDS = 10.0
"""Kept from the invocation's time for answering the framework."""
MAX_DATA_CHARS = 3000  # CloudFormation caps a custom resource response at 4 KB

InitFunction = Callable[[], Mapping[str, object]]


class LambdaContext(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class InitFailed(RuntimeError):
    """Initialisation failed for good: the framework reports FAILED to CloudFormation."""


def _is_domain_error(exc: BaseException) -> bool:
    """solar_rag's own errors carry ``status``: the HTTP answer of the API (502 for any vector
    store failure), not a status OpenSearch returned."""
    return any(c.__name__ == "RagError" and c.__module__ == "solar_rag.errors"
               for c in type(exc).__mro__)


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
        return any(status in retry.OPENSEARCH_INIT_RETRY_STATUSES for status in statuses)
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


def physical_id(properties: Mapping[str, Any]) -> str:
    """Stable per target and index: only a different index makes a new physical resource."""
    return f"opensearch-index:{properties.get('Target', 'domain')}:{properties.get('Index', '')}"


def response_data(result: Mapping[str, object]) -> dict[str, str]:
    data = {key: value if isinstance(value, str) else json.dumps(value)
            for key, value in result.items()}
    if len(json.dumps(data)) > MAX_DATA_CHARS:
        return {"Summary": json.dumps(result)[: MAX_DATA_CHARS // 2]}
    return data


def _request_type(event: Mapping[str, Any]) -> str:
    request = event.get("RequestType")
    if request not in ("Create", "Update", "Delete"):
        raise InitFailed(f"unknown RequestType {request!r}")
    return str(request)


def on_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """The resource's physical id; the work happens in ``is_complete``."""
    properties = event.get("ResourceProperties") or {}
    if _request_type(event) == "Delete":
        resource_id = event.get("PhysicalResourceId") or physical_id(properties)
        LOGGER.info(json.dumps({"message": "delete: index and data retained", "id": resource_id}))
        return {"PhysicalResourceId": resource_id}
    return {"PhysicalResourceId": physical_id(properties)}


def is_complete(
    event: Mapping[str, Any], context: LambdaContext | None, *, init: InitFunction
) -> dict[str, Any]:
    """One attempt at ``init`` within what the invocation has left (see the module docstring)."""
    if _request_type(event) == "Delete":
        return {"IsComplete": True}
    budget = None
    if context is not None:
        budget = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS
    try:
        with deadline.budget(budget):
            result = init()
    except Exception as exc:  # every failure of the attempt is classified, none escapes as is
        if not is_retryable(exc):
            raise InitFailed(f"OpenSearch initialisation failed: {exc}") from exc
        LOGGER.warning(json.dumps({
            "message": "opensearch init not complete yet: the provider framework asks again",
            "error": str(exc)[:500],
            "statuses": _statuses(exc),
        }))
        return {"IsComplete": False}
    LOGGER.info(json.dumps({"message": "opensearch initialised", **result}, default=str))
    return {"IsComplete": True, "Data": response_data(result)}
