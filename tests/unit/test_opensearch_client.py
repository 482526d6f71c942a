"""Client construction per target and error translation (no network)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from opensearchpy import Urllib3AWSV4SignerAuth, Urllib3HttpConnection
from opensearchpy.exceptions import (
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    RequestError,
    TransportError,
)
from solar_rag.adapters.opensearch.client import (
    Backoff,
    BackoffTransport,
    build_client,
    translate,
)
from solar_rag.errors import (
    NotConfigured,
    UpstreamRateLimited,
    UpstreamTimeout,
    VectorStoreError,
)
from solar_rag.settings import Settings


def settings(**values: Any) -> Settings:
    values.setdefault("opensearch_url", None)
    values.setdefault("opensearch_endpoint", None)
    return Settings(_env_file=None, vector_store="opensearch", **values)


def fake_session() -> boto3.Session:
    return boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                         region_name="eu-west-1")


def test_plain_url_with_basic_auth() -> None:
    client = build_client(settings(opensearch_url="https://search.local:9200",
                                   opensearch_username="admin", opensearch_password="pw",
                                   opensearch_timeout_seconds=7, opensearch_max_retries=2))
    transport = client.transport
    assert isinstance(transport, BackoffTransport)
    assert transport.policy.attempts == 3
    (connection,) = transport.connection_pool.connections
    assert isinstance(connection, Urllib3HttpConnection)
    assert connection.host == "https://search.local:9200"
    assert connection.timeout == 7
    assert connection.http_compress is False
    assert connection.headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(("target", "service"), [
    ("domain", "es"), ("serverless", "aoss"), ("serverless-classic", "aoss"),
])
def test_sigv4_service_per_target(target: str, service: str) -> None:
    client = build_client(
        settings(opensearch_endpoint="search-x.eu-west-1.es.amazonaws.com",
                 opensearch_target=target),
        session=fake_session(),
    )
    (connection,) = client.transport.connection_pool.connections
    assert connection.host == "https://search-x.eu-west-1.es.amazonaws.com:443"
    assert connection.http_compress is False
    auth = connection.http_auth
    assert isinstance(auth, Urllib3AWSV4SignerAuth)
    assert auth.service == service
    assert auth.signer.region == "eu-west-1"
    assert "authorization" not in connection.headers


def test_sigv4_region_from_settings_wins() -> None:
    client = build_client(
        settings(opensearch_endpoint="https://x.aoss.amazonaws.com", AWS_REGION="us-east-1"),
        session=fake_session(),
    )
    (connection,) = client.transport.connection_pool.connections
    assert connection.http_auth.signer.region == "us-east-1"


def test_sigv4_without_region_or_credentials_is_not_configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    no_region = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b")
    with pytest.raises(NotConfigured, match="AWS_REGION"):
        build_client(settings(opensearch_endpoint="x.es.amazonaws.com", AWS_REGION=None),
                     session=no_region)

    class NoCredentials:
        region_name = "eu-west-1"

        def get_credentials(self) -> None:
            return None

    with pytest.raises(NotConfigured, match="no AWS credentials"):
        build_client(settings(opensearch_endpoint="x.es.amazonaws.com"),
                     session=NoCredentials())  # type: ignore[arg-type]


def test_nothing_configured() -> None:
    with pytest.raises(NotConfigured, match="OPENSEARCH_URL"):
        build_client(settings())


def test_backoff_is_bounded_and_grows() -> None:
    backoff = Backoff(base_seconds=0.5, cap_seconds=2.0)
    for attempt in range(6):
        assert 0.0 <= backoff.delay(attempt) <= min(2.0, 0.5 * 2**attempt)


def _error(cls: type[TransportError], status: Any, kind: str, reason: str) -> TransportError:
    return cls(status, kind, {"error": {"type": kind, "reason": reason}, "status": status})


def test_translate_errors() -> None:
    missing = translate(_error(NotFoundError, 404, "index_not_found_exception", "no such index"),
                        index="rag-chunks", action="search")
    assert isinstance(missing, NotConfigured)
    assert "rag opensearch init" in missing.message
    assert "'rag-chunks'" in missing.message

    timeout = translate(ConnectionTimeout("TIMEOUT", "read timed out", None), index="i",
                        action="search")
    assert isinstance(timeout, UpstreamTimeout)

    down = translate(ConnectionError("N/A", "refused", None), index="i", action="bulk upsert")
    assert isinstance(down, VectorStoreError)
    assert "cannot reach OpenSearch" in down.message

    throttled = translate(_error(TransportError, 429, "rejected_execution_exception", "busy"),
                          index="i", action="search")
    assert isinstance(throttled, UpstreamRateLimited)

    denied = translate(_error(AuthorizationException, 403, "security_exception", "no"),
                       index="i", action="search")
    assert isinstance(denied, NotConfigured)
    assert "access policy" in denied.message

    bad = translate(_error(RequestError, 400, "parsing_exception", "unknown query [x]"),
                    index="i", action="search")
    assert type(bad) is VectorStoreError
    assert "parsing_exception" in bad.message
    assert "unknown query [x]" in bad.message
