"""The service's HTTP API as ``rag eval`` uses it: timeouts, bounded retries, clear errors.

The same client evaluates ``rag serve``, the in-process local service and a deployed stack
(API key in ``x-api-key``, as API Gateway expects).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from solar_rag.evaluation.errors import RequestFailed, ServiceUnavailable

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 30.0
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class Timed:
    body: dict[str, Any]
    seconds: float
    """Wall time of the call, retries and their waits included (what a user waits)."""
    attempts: int


class ServiceClient:
    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 60.0,
                 retries: int = 2, backoff: float = 0.5,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ServiceUnavailable(f"--url must start with http:// or https:// (got {base_url!r})")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        headers = {"accept": "application/json", "user-agent": "solar-rag-eval"}
        if api_key:
            headers["x-api-key"] = api_key
        self.base_url = base_url.rstrip("/")
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url + "/", headers=headers, transport=transport,
                                  timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                  follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> dict[str, Any]:
        """``GET /v1/health``; ``ServiceUnavailable`` with the reason when the service cannot
        be used (unreachable, key refused, not this API)."""
        try:
            timed = self.call("GET", "v1/health")
        except RequestFailed as error:
            raise ServiceUnavailable(_unavailable(self.base_url, error)) from None
        return timed.body

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Timed:
        started = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(method, path.lstrip("/"), json=body)
            except httpx.TimeoutException:
                error = RequestFailed("timed out", attempts=attempt)
                wait = self._backoff * 2 ** (attempt - 1)
            except httpx.TransportError as exc:
                error = RequestFailed(f"cannot connect ({type(exc).__name__}: {_first_line(exc)})",
                                      attempts=attempt)
                wait = self._backoff * 2 ** (attempt - 1)
            else:
                if response.status_code < 300:
                    parsed = _json(response)
                    if parsed is None:
                        raise RequestFailed(f"HTTP {response.status_code}: the body is not a JSON object",
                                            status=response.status_code, attempts=attempt)
                    return Timed(parsed, time.perf_counter() - started, attempt)
                error = RequestFailed(f"HTTP {response.status_code}: {_detail(response)}",
                                      status=response.status_code, attempts=attempt)
                if response.status_code not in RETRYABLE_STATUSES:
                    raise error
                wait = _retry_after(response) or self._backoff * 2 ** (attempt - 1)
            if attempt > self._retries:
                raise error
            self._sleep(min(wait, MAX_RETRY_AFTER_SECONDS))


def _unavailable(url: str, error: RequestFailed) -> str:
    if error.status in (401, 403):
        return (f"{url} refused the API key (HTTP {error.status}): pass it with --api-key or the "
                "RAG_API_KEY environment variable (sent as x-api-key)")
    if error.status is None:
        return f"cannot reach {url}: {error} (is `rag serve` running, is the URL right?)"
    return f"{url}/v1/health answered {error}: is this a solar-rag service?"


def _json(response: httpx.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _detail(response: httpx.Response) -> str:
    data = _json(response)
    detail = data.get("detail") if data else None
    if detail is None and data and isinstance(data.get("message"), str):
        detail = data["message"]  # API Gateway's own errors: {"message": "Forbidden"}
    text = str(detail) if detail is not None else " ".join(response.text.split())
    return (text[:MAX_DETAIL_CHARS] + "…") if len(text) > MAX_DETAIL_CHARS else (text or "(no body)")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else "no detail"
