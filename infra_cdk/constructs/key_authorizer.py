"""API keys also as ``Authorization: Bearer <key>`` (OpenAI clients send it so).

A REST API reads API keys either from the ``x-api-key`` header or from an authorizer. This
REQUEST authorizer (``functions/key_authorizer``) returns the key found in either header as
``usageIdentifierKey``; the API's ``apiKeySource`` is ``AUTHORIZER``, so API Gateway checks
it against the usage plan exactly as before. Results are not cached: with two possible
headers, API Gateway's cache key (all identity sources present) cannot express "either".
"""

from __future__ import annotations

from dataclasses import replace

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from constructs import Construct

from infra_cdk.config import FunctionSizing
from infra_cdk.constructs.functions import FunctionEnvironment, LambdaDefaults, RagFunction, create_function

SIZING = FunctionSizing(memory_mb=128, timeout_seconds=5)


class KeyAuthorizer(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, defaults: LambdaDefaults,
                 environment: FunctionEnvironment) -> None:
        super().__init__(scope, construct_id)
        self.function: RagFunction = create_function(
            self,
            "Function",
            code_name="key_authorizer",
            description="API Gateway authorizer: the API key from x-api-key or Authorization: Bearer",
            sizing=SIZING,
            environment=environment,
            # Standard library only: no layers, no SnapStart (nothing to snapshot).
            defaults=replace(defaults, layers=(), snap_start=False),
        )
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "Authorizer",
            handler=self.function.target,
            identity_sources=[],
            results_cache_ttl=cdk.Duration.seconds(0),
        )
