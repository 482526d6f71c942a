"""The local stand-ins every benchmark runs against, and settings that point at them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import urllib3.connectionpool
from solar_rag.settings import Settings

from tests.fakes.opensearch_stub import OpenSearchStub
from tests.fakes.upstage_server import FakeUpstage

API_KEY = "bench-key"


@contextmanager
def opensearch_stub() -> Iterator[OpenSearchStub]:
    stub = OpenSearchStub("domain")
    stub.record_requests = False  # bodies of thousands of 1024-d vectors add up
    stub.validate_requests = False  # the spec check is the tests' job, not a cost to measure
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


@contextmanager
def fake_upstage(**options: Any) -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=API_KEY, **options) as fake:
        yield fake


def settings(fake: FakeUpstage, stub: OpenSearchStub | None, data_dir: Path, *,
             index: str = "rag-chunks", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "upstage_api_key": API_KEY,
        "upstage_base_url": fake.base_url,
        "rag_data_dir": data_dir,
        "vector_store": "opensearch" if stub is not None else "local",
        "opensearch_index": index,
    }
    if stub is not None:
        values["opensearch_url"] = stub.url
    values.update(overrides)
    return Settings(_env_file=None, **values)


def langchain_upstage_options(base_url: str, api_key: str = API_KEY) -> dict[str, str]:
    """``UpstageEmbeddings``/``ChatUpstage`` keyword arguments (by alias) for the fake."""
    return {"api_key": api_key, "base_url": base_url}


def environment(fake: FakeUpstage, stub: OpenSearchStub | None, data_dir: Path, *,
                index: str = "rag-chunks") -> dict[str, str]:
    """The same configuration as environment variables, for handlers in child processes."""
    env = {
        "UPSTAGE_API_KEY": API_KEY,
        "UPSTAGE_BASE_URL": fake.base_url,
        "UPSTAGE_API_BASE": fake.base_url,  # langchain-upstage's name for it
        "RAG_DATA_DIR": str(data_dir),
        "VECTOR_STORE": "opensearch" if stub is not None else "local",
        "OPENSEARCH_INDEX": index,
        "POWERTOOLS_SERVICE_NAME": "solar-rag-bench",
        "POWERTOOLS_METRICS_NAMESPACE": "SolarRagBench",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "LOG_LEVEL": "WARNING",
    }
    if stub is not None:
        env["OPENSEARCH_URL"] = stub.url
    return env


class TransportClock:
    """Adds up the wall time spent in HTTP round trips (openai's httpx2, urllib3).

    Patches the two transports in this process while active. The time inside them is the
    servers' (and the loopback's), not ours: ``ours = total - transport``.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._saved: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> TransportClock:
        self._wrap(httpx2.Client, "send")
        self._wrap(urllib3.connectionpool.HTTPConnectionPool, "urlopen")
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()

    def reset(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def _wrap(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                response = original(*args, **kwargs)
                read = getattr(response, "read", None)
                if owner is httpx2.Client and callable(read):
                    read()  # the body is the server's work too
                return response
            finally:
                clock.seconds += time.perf_counter() - started
                clock.calls += 1

        self._saved.append((owner, name, original))
        setattr(owner, name, timed)
