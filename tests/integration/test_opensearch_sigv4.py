"""SigV4 signing as the adapter sends it (fake static/refreshing credentials, stub server)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials
from solar_rag.adapters.opensearch import build_client, init_opensearch
from solar_rag.adapters.opensearch.capabilities import Target
from solar_rag.settings import Settings

from tests.fakes.opensearch_stub import OpenSearchStub, RecordedRequest

AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]{64})"
)


class FakeSession:
    """The two things the adapter uses from a boto3 Session."""

    region_name = "eu-west-1"

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials

    def get_credentials(self) -> Any:
        return self.credentials


@pytest.fixture(scope="module")
def server() -> Iterator[OpenSearchStub]:
    with OpenSearchStub() as stub:
        yield stub


def sigv4_settings(stub: OpenSearchStub, target: Target) -> Settings:
    return Settings(
        _env_file=None, vector_store="opensearch", opensearch_url=None,
        opensearch_endpoint=stub.url, opensearch_target=target, embedding_dimensions=8,
        AWS_REGION=None,
    )


def expected_signature(request: RecordedRequest, credentials: Credentials, service: str,
                       signed: list[str]) -> str:
    url = f"http://{request.headers['host']}{request.path}"
    if request.query:
        url += "?" + "&".join(f"{k}={v}" for k, v in sorted(request.query.items()))
    aws = AWSRequest(method=request.method, url=url, data=request.body,
                     headers={name: request.headers[name] for name in signed})
    aws.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(credentials, service, "eu-west-1")
    return str(signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws))


@pytest.mark.parametrize(("target", "service"), [
    ("domain", "es"), ("serverless", "aoss"), ("serverless-classic", "aoss"),
])
def test_requests_are_signed_for_the_right_service(server: OpenSearchStub, target: Target,
                                                   service: str) -> None:
    server.reset(target)
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "session-token")
    client = build_client(sigv4_settings(server, target), session=FakeSession(credentials))  # type: ignore[arg-type]
    init_opensearch(sigv4_settings(server, target), client)
    assert server.requests
    for request in server.requests:
        match = AUTH.fullmatch(request.headers["authorization"])
        assert match, request.headers["authorization"]
        assert (match["key"], match["region"], match["service"]) == (
            "AKIDEXAMPLE", "eu-west-1", service)
        assert request.headers["x-amz-content-sha256"] == hashlib.sha256(request.body).hexdigest()
        assert request.headers["x-amz-security-token"] == "session-token"
        assert "content-encoding" not in request.headers  # no gzip with SigV4
        signed = match["signed"].split(";")
        assert {"host", "x-amz-date", "x-amz-content-sha256"} <= set(signed)
        assert "connection" not in signed  # the opensearch-py 3.2.0 requests-signer bug
        assert match["sig"] == expected_signature(request, credentials, service, signed)


def test_credentials_are_refreshed_not_frozen(server: OpenSearchStub) -> None:
    server.reset("domain")
    calls: list[int] = []

    def refresh() -> dict[str, str]:
        calls.append(1)
        expiry = datetime.now(UTC) + timedelta(minutes=1)  # inside botocore's refresh window
        return {"access_key": f"AKID{len(calls)}", "secret_key": "s", "token": "t",
                "expiry_time": expiry.isoformat()}

    credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    settings = sigv4_settings(server, "domain")
    client = build_client(settings, session=FakeSession(credentials))  # type: ignore[arg-type]
    client.indices.exists(index="a")
    client.indices.exists(index="b")
    keys = [AUTH.fullmatch(r.headers["authorization"])["key"]  # type: ignore[index]
            for r in server.requests]
    assert len(set(keys)) == 2, keys
