"""Response streaming on AWS (issue 14): the streaming function behind the Lambda Web Adapter,
the REST API's STREAM integrations, the public playground pages."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_

from infra_cdk.constructs.streaming import (
    STREAM_TIMEOUT_SECONDS,
    web_adapter_environment,
    web_adapter_layer_arn,
)
from layers import build_layers
from tests.infrastructure.conftest import Synth
from tests.infrastructure.helpers import mentions, methods

ALL = pytest.mark.parametrize("variant", ["dev", "serverless", "prod"])
STREAMED = {("POST", "/v1/query"), ("POST", "/v1/chat"), ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models")}


def stream_function(synth: Synth) -> tuple[str, dict[str, Any]]:
    logical = synth.logical_id(synth.stack.stream.function.node.default_child)
    return logical, synth.resources[logical]["Properties"]


def test_layer_arn_per_region_and_architecture() -> None:
    assert web_adapter_layer_arn("ap-northeast-2", lambda_.Architecture.X86_64) == \
        "arn:aws:lambda:ap-northeast-2:753240598075:layer:LambdaAdapterLayerX86:26"
    assert web_adapter_layer_arn("us-east-1", lambda_.Architecture.ARM_64) == \
        "arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayerArm64:26"
    assert web_adapter_layer_arn("cn-north-1", lambda_.Architecture.ARM_64, "aws-cn").startswith(
        "arn:aws-cn:lambda:cn-north-1:")


@ALL
def test_streaming_function_runs_the_app_under_the_web_adapter(synths: dict[str, Synth],
                                                                variant: str) -> None:
    synth = synths[variant]
    _, props = stream_function(synth)
    assert props["Handler"] == "run.sh"
    assert props["Runtime"] == "python3.12"
    assert props["Timeout"] == STREAM_TIMEOUT_SECONDS == 900
    env = props["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_PORT"] == "8080"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/v1/health"
    assert env["REQUEST_BUDGET_SECONDS"] == "890"
    assert "UPSTAGE_API_KEY" not in env and "UPSTAGE_SECRET_ID" in env
    assert env["VECTOR_STORE"] == "opensearch"
    # The shared layers plus the adapter for the function's architecture, in the stack's region.
    layers = props["Layers"]
    assert len(layers) == 3
    adapter = [layer for layer in layers if "LambdaAdapterLayer" in str(layer)]
    assert len(adapter) == 1
    (architecture,) = props["Architectures"]
    name = "LambdaAdapterLayerX86:26" if architecture == "x86_64" else "LambdaAdapterLayerArm64:26"
    assert name in str(adapter[0])
    region = "ap-northeast-2" if variant == "prod" else "AWS::Region"
    assert region in str(adapter[0])
    assert (props.get("SnapStart") == {"ApplyOn": "PublishedVersions"}) == (variant == "prod")


@ALL
def test_streamed_routes_use_stream_transfer_mode_and_streaming_invocations(
        synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    target = synth.logical_id(synth.stack.stream.target.node.default_child)
    found = methods(synth.template)
    for key, props in found.items():
        integration = props.get("Integration", {})
        if key in STREAMED:
            assert integration["ResponseTransferMode"] == "STREAM", key
            assert integration["TimeoutInMillis"] == 900_000, key
            assert mentions(integration["Uri"], target), key
            uri = str(integration["Uri"])
            assert "2021-11-15/functions/" in uri and "/response-streaming-invocations" in uri, key
            assert props["ApiKeyRequired"] is True, key  # streaming keeps the API key
        else:
            assert "ResponseTransferMode" not in integration, key
            assert "response-streaming-invocations" not in str(integration.get("Uri")), key


def test_snap_start_streams_through_the_alias(prod: Synth) -> None:
    alias = prod.logical_id(prod.stack.stream.target.node.default_child)
    assert prod.resources[alias]["Type"] == "AWS::Lambda::Alias"
    (query,) = [p for k, p in methods(prod.template).items() if k == ("POST", "/v1/query")]
    assert mentions(query["Integration"]["Uri"], alias)


def test_streaming_function_reads_the_secret_and_searches_only(dev: Synth) -> None:
    from tests.infrastructure.helpers import function_role, role_actions

    logical, _ = stream_function(dev)
    actions = role_actions(dev.template, function_role(dev.template, logical))
    assert "secretsmanager:GetSecretValue" in actions
    assert not any(a.startswith(("dynamodb:", "s3:")) for a in actions)
    assert not any(a in actions for a in ("es:ESHttpPut", "es:ESHttpDelete", "aoss:BatchGetCollection"))


def test_web_adapter_environment_budget_follows_the_timeout() -> None:
    assert web_adapter_environment(300)["REQUEST_BUDGET_SECONDS"] == "290"


def test_function_asset_ships_an_executable_start_script(tmp_path: Path) -> None:
    artefact = build_layers.build_function("stream", build_root=tmp_path)
    script = artefact.path / "run.sh"
    assert script.is_file() and script.stat().st_mode & stat.S_IXUSR
    assert (artefact.path / "handler.py").is_file()
    assert "uvicorn handler:app" in script.read_text()
    assert os.access(script, os.X_OK)


def test_shared_layer_ships_the_playground(tmp_path: Path) -> None:
    artefact = build_layers.build_shared(build_root=tmp_path)
    static = artefact.path / "python" / "solar_rag" / "api" / "static"
    assert {p.name for p in static.iterdir()} == {"index.html", "playground.js", "playground.css"}


@ALL
def test_api_keys_come_from_the_bearer_authorizer(synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    (api,) = synth.of_type("AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["ApiKeySourceType"] == "AUTHORIZER"
    ((authorizer_id, authorizer),) = synth.of_type("AWS::ApiGateway::Authorizer").items()
    assert authorizer["Properties"]["Type"] == "REQUEST"
    assert authorizer["Properties"]["AuthorizerResultTtlInSeconds"] == 0
    function = synth.logical_id(synth.stack.key_authorizer.function.function.node.default_child)
    assert mentions(authorizer["Properties"]["AuthorizerUri"], function)
    props = synth.resources[function]["Properties"]
    assert "Layers" not in props and "SnapStart" not in props
    for (verb, path), method in methods(synth.template).items():
        if verb == "OPTIONS" or path in {"/", "/playground", "/playground/{name}"}:
            assert method["AuthorizationType"] == "NONE", (verb, path)
            assert "AuthorizerId" not in method
        else:
            assert method["AuthorizationType"] == "CUSTOM", (verb, path)
            assert method["AuthorizerId"] == {"Ref": authorizer_id}, (verb, path)
            assert method["ApiKeyRequired"] is True
