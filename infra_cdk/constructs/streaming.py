"""Streamed responses on AWS: the AWS Lambda Web Adapter (LWA) layer and the settings of the
function behind API Gateway's response streaming (REST API, ``responseTransferMode: STREAM``).

Python's managed Lambda runtime cannot stream; LWA can. The function's handler is a start-up
script (``functions/stream/run.sh``) that LWA's wrapper (``/opt/bootstrap``) runs: uvicorn
serves the FastAPI app on ``AWS_LWA_PORT`` and LWA, in ``response_stream`` invoke mode,
forwards each invocation to it and streams the body back through Lambda's
``InvokeWithResponseStream``, which the REST API integration calls
(``.../2021-11-15/functions/<arn>/response-streaming-invocations``).

Layer: published by AWS in every commercial region under account 753240598075, one per
architecture (README of awslabs/aws-lambda-web-adapter, checked 2026-12-06: version 26 for
both, LWA 1.0).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

WEB_ADAPTER_ACCOUNT = "753240598075"
WEB_ADAPTER_VERSION = 26
WEB_ADAPTER_PORT = 8080
STREAM_TIMEOUT_SECONDS = 900
"""Lambda's maximum, and API Gateway's limit for a streamed response (15 min)."""
BUDGET_MARGIN_SECONDS = 10
STREAM_HANDLER = "run.sh"
READINESS_PATH = "/v1/health"


def web_adapter_layer_arn(region: str, architecture: lambda_.Architecture,
                          partition: str = "aws") -> str:
    # By name: jsii hands out distinct proxies for the same architecture.
    name = "LambdaAdapterLayerArm64" if architecture.name == lambda_.Architecture.ARM_64.name \
        else "LambdaAdapterLayerX86"
    return (f"arn:{partition}:lambda:{region}:{WEB_ADAPTER_ACCOUNT}:layer:{name}:"
            f"{WEB_ADAPTER_VERSION}")


def web_adapter_layer(scope: Construct, construct_id: str,
                      architecture: lambda_.Architecture) -> lambda_.ILayerVersion:
    stack = cdk.Stack.of(scope)
    return lambda_.LayerVersion.from_layer_version_arn(
        scope, construct_id, web_adapter_layer_arn(stack.region, architecture, stack.partition))


def web_adapter_environment(timeout_seconds: int = STREAM_TIMEOUT_SECONDS) -> dict[str, str]:
    """What LWA and the app read (names from LWA's README)."""
    return {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "AWS_LWA_PORT": str(WEB_ADAPTER_PORT),
        "AWS_LWA_READINESS_CHECK_PATH": READINESS_PATH,
        # solar_rag.lambda_edge.web: each request's deadline, under the function's timeout.
        "REQUEST_BUDGET_SECONDS": str(timeout_seconds - BUDGET_MARGIN_SECONDS),
    }


def streaming_integration(function: lambda_.IFunction) -> apigw.LambdaIntegration:
    """A proxy integration that streams the function's response (15 min, 5 min idle)."""
    return apigw.LambdaIntegration(
        function,
        proxy=True,
        allow_test_invoke=False,
        response_transfer_mode=apigw.ResponseTransferMode.STREAM,
        timeout=cdk.Duration.seconds(STREAM_TIMEOUT_SECONDS),
    )
