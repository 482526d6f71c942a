"""boto3 clients with explicit timeouts and standard retries, created once per process.

No attempt (first or retry) is sent with less than ``deadline.MIN_ATTEMPT_SECONDS`` left
under the request's deadline: the call fails with ``DeadlineExceeded`` instead."""

from __future__ import annotations

from functools import cache
from typing import Any

CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
MAX_ATTEMPTS = 4


@cache
def client(service: str) -> Any:
    """A shared client for ``service`` (``s3``, ``dynamodb``, ``secretsmanager``).

    Typed as ``Any`` here; adapters annotate it with the ``mypy_boto3_*`` client type.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
    )
    created = boto3.session.Session().client(service, config=config)  # type: ignore[call-overload]
    created.meta.events.register("before-send", _respect_deadline)
    return created


def _respect_deadline(request: Any = None, **_: Any) -> None:
    from solar_rag.resilience import deadline

    current = deadline.current()
    if current is not None:
        what = f"the AWS request {getattr(request, 'method', '')} {getattr(request, 'url', '')}"
        current.check(what.split("?")[0])


def reset() -> None:
    """Drop the cached clients (tests start and stop AWS mocks between cases)."""
    client.cache_clear()


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``""`` for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
        return str(code)
    return ""
