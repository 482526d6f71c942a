"""Why a run or one of its requests failed (without importing the HTTP client)."""

from __future__ import annotations


class ServiceUnavailable(Exception):
    """The run cannot start or go on: the URL is unreachable, or the API key is refused."""


class RequestFailed(Exception):
    """One request failed after its retries; the question it belongs to is reported failed."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
