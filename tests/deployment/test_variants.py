"""Tests that need a deployment of their own: other synthesized variants (``-c
vector_store=serverless``, ``-c stage=prod``), a fresh OpenSearch."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.deployment.harness import Deployed, Variant
from tests.deployment.lambda_process import FunctionError


@pytest.mark.parametrize("variant", ["serverless"])
def test_serverless_collection_variant(deploy: Callable[[Variant], Deployed], variant: Variant) -> None:
    """``-c vector_store=serverless``: other endpoint, target and signing service."""
    deployed = deploy(variant)
    env = deployed.function("query").config.environment
    assert env["OPENSEARCH_TARGET"].startswith("serverless")
    deployed.set_secret()
    [init] = list(deployed.custom_resources())
    deployed.custom_resource(init, "Create")
    document = {"id": "faq/vpn.md", "text": "Connect to the VPN with the WireGuard profile from the portal."}
    indexed = deployed.http("POST", "/v1/documents", {"documents": [document]})
    assert indexed.status == 200, indexed
    answer = deployed.http("POST", "/v1/query", {"query": "How do I connect to the VPN?"})
    assert answer.status == 200, answer
    assert answer.json()["citations"][0]["document_id"] == "faq/vpn.md"
    signed = [r.headers.get("authorization", "") for r in deployed.opensearch.requests]
    assert signed and all("/aoss/aws4_request" in h for h in signed), signed[:2]
    assert json.dumps(env).count("127.0.0.1") >= 2  # collection endpoint and Upstage fake


def test_a_new_deployment_retires_the_previous_one(deploy: Callable[[Variant], Deployed]) -> None:
    """The backends are shared: an older deployment refuses use instead of seeing wiped state."""
    first = deploy("domain")
    second = deploy("domain")
    with pytest.raises(RuntimeError, match="replaced"):
        first.http("GET", "/v1/health")
    assert second.http("GET", "/v1/health").status == 200


def test_prod_variant_runs_through_snapstart_aliases(deploy: Callable[[Variant], Deployed]) -> None:
    """``-c stage=prod``: API routes and the event source mapping target the "live" aliases,
    CORS adds OPTIONS methods, the stack lives in another region."""
    deployed = deploy("prod")
    assert deployed.region == "ap-northeast-2"
    aliases = deployed.assembly.of_type("AWS::Lambda::Alias")
    assert {r["Properties"]["Name"] for r in aliases.values()} == {"live"}
    [mapping] = deployed.assembly.of_type("AWS::Lambda::EventSourceMapping").values()
    assert "Live" in json.dumps(mapping["Properties"]["FunctionName"])
    assert {r.integration_type for r in deployed.routes} == {"AWS_PROXY", "MOCK"}
    deployed.set_secret()
    [init] = list(deployed.custom_resources())
    deployed.custom_resource(init, "Create")
    deployed.put_object("faq/hours.md", "The helpdesk answers from 9:00 to 18:00 on weekdays.")
    batches = deployed.deliver_notifications()
    assert batches and not [b for b in batches if b.failed_ids]
    answer = deployed.http("POST", "/v1/query", {"query": "When does the helpdesk answer?"})
    assert answer.status == 200, answer
    assert answer.json()["citations"][0]["document_id"] == "faq/hours.md"


def test_a_permanent_opensearch_error_fails_the_bootstrap_at_once(deploy: Callable[[Variant], Deployed]) -> None:
    """CloudFormation hears of a mapping error at once (isComplete raises), not after the
    provider framework's 10-minute waiter."""
    deployed = deploy("domain")
    [init] = list(deployed.custom_resources())
    deployed.opensearch.inject(400, "mapper_parsing_exception", "unknown parameter [engine]", method="PUT",
                               path=r"/rag-chunks-v\d+", times=None)
    with pytest.raises(FunctionError, match="mapper_parsing_exception") as failure:
        deployed.custom_resource(init, "Create")
    assert failure.value.error_type == "InitFailed"
    assert deployed.function("opensearch_init").invocations[-1].duration_ms < 20_000
