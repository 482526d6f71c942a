"""API Gateway REST API: Lambda proxy routes, API key + usage plan, validation, access logs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra_cdk.config import ApiConfig
from infra_cdk.constructs.streaming import streaming_integration
from infra_cdk.nag import acknowledge

FunctionKey = Literal["chat", "query", "indexer", "stream"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: FunctionKey
    public: bool = False
    """No API key: static pages only (the playground); every API call needs the key."""


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/health", "chat"),
    # Answers that may stream ("stream": true; OpenAI-compatible): the streaming function.
    Route("POST", "/v1/chat", "stream"),
    Route("POST", "/v1/query", "stream"),
    Route("POST", "/v1/chat/completions", "stream"),
    Route("GET", "/v1/models", "stream"),
    Route("GET", "/", "chat", public=True),
    Route("GET", "/playground", "chat", public=True),
    Route("GET", "/playground/{name}", "chat", public=True),
    Route("POST", "/v1/files", "indexer"),
    Route("POST", "/v1/search", "query"),
    Route("POST", "/v1/embeddings", "query"),
    Route("POST", "/agent/query", "query"),
    Route("POST", "/v1/documents", "indexer"),
    Route("GET", "/v1/documents", "indexer"),
    # Greedy: document ids are S3 keys and may contain "/".
    Route("GET", "/v1/documents/{id+}", "indexer"),
    Route("DELETE", "/v1/documents/{id+}", "indexer"),
    Route("POST", "/agent/knowledge", "indexer"),
    # Presigned S3 uploads for large files (the S3 pipeline indexes them).
    Route("POST", "/v1/uploads", "indexer"),
)
CORS_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
CORS_HEADERS = ("Content-Type", "X-Api-Key", "Authorization")

# The access log: API Gateway's standard fields plus what tells a slow or failing function
# from a gateway problem (integration latency, status and error; the gateway's own error).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "errorMessage": "$context.error.message",
    "errorType": "$context.error.responseType",
    "apiKeyId": "$context.identity.apiKeyId",
}

# API Gateway checks the body is a JSON object with at least one member; the application
# validates the rest (and answers 422 with details).
BODY_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    type=apigw.JsonSchemaType.OBJECT,
    min_properties=1,
)


class RagApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        stage_name: str,
        targets: Mapping[FunctionKey, lambda_.IFunction],
        config: ApiConfig,
        log_retention: logs.RetentionDays,
        log_removal_policy: cdk.RemovalPolicy,
        authorizer: apigw.IAuthorizer | None = None,
    ) -> None:
        """``authorizer``: API keys come from it (``x-api-key`` or a bearer token) instead
        of the ``x-api-key`` header alone."""
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=log_retention, removal_policy=log_removal_policy
        )
        cors = (
            apigw.CorsOptions(
                allow_origins=list(config.cors_origins),
                allow_methods=list(CORS_METHODS),
                allow_headers=list(CORS_HEADERS),
                max_age=cdk.Duration.hours(1),
            )
            if config.cors_origins
            else None
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=name,  # alarm dimensions (ApiName) tell the stages apart
            description="solar-rag: chat, retrieval-augmented query and document indexing",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER if authorizer
            else apigw.ApiKeySourceType.HEADER,
            default_method_options=apigw.MethodOptions(api_key_required=True),
            default_cors_preflight_options=cors,
            # The account-level logging role is shared by every API of the account and region:
            # it lives in its own stack (infra_cdk/api_gateway_account.py), not in each stage.
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log bodies: they carry user content
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=config.throttle_rate,
                throttling_burst_limit=config.throttle_burst,
            ),
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-APIG4",
            "Every method requires an API key bound to a usage plan (throttling + quota): a "
            "service-to-service API. End-user auth (Cognito/IAM authorizer) is an add-on, "
            "see docs/deploy.md.",
        )
        acknowledge(
            self.rest_api,
            "AwsSolutions-COG4",
            "No end-user identity in this service: callers hold API keys (usage plan). A "
            "Cognito authorizer can be added in front when the API faces end users.",
        )
        acknowledge(
            self.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "WAF is optional (a web ACL costs per month and per request): API keys, usage-plan "
            "throttling and quotas bound abuse. Attach a WAFv2 web ACL to the stage if exposed "
            "to untrusted traffic.",
        )
        self.validator = apigw.RequestValidator(
            self,
            "Validator",
            rest_api=self.rest_api,
            validate_request_body=True,
            validate_request_parameters=True,
        )
        self.body_model = self.rest_api.add_model(
            "JsonObjectBody", content_type="application/json", schema=BODY_SCHEMA
        )
        integrations = {
            key: streaming_integration(function) if key == "stream"
            else apigw.LambdaIntegration(function, proxy=True, allow_test_invoke=False)
            for key, function in targets.items()
        }
        self.methods: dict[tuple[str, str], apigw.Method] = {}
        for route in ROUTES:
            resource = self._resource(route.path)
            self.methods[(route.method, route.path)] = resource.add_method(
                route.method,
                integrations[route.function],
                api_key_required=not route.public,
                authorizer=None if route.public else authorizer,
                authorization_type=apigw.AuthorizationType.NONE if route.public or not authorizer
                else apigw.AuthorizationType.CUSTOM,
                request_validator=self.validator,
                request_models={"application/json": self.body_model} if route.method == "POST" else None,
                request_parameters=_parameters(route),
            )

        self.usage_plan = self.rest_api.add_usage_plan(
            "UsagePlan",
            description="Default plan for solar-rag API keys",
            throttle=apigw.ThrottleSettings(
                rate_limit=config.throttle_rate, burst_limit=config.throttle_burst
            ),
            quota=apigw.QuotaSettings(limit=config.quota_per_day, period=apigw.Period.DAY),
        )
        self.usage_plan.add_api_stage(stage=self.rest_api.deployment_stage)
        self.api_key = self.rest_api.add_api_key(
            "ApiKey", description="Default solar-rag API key (value: aws apigateway get-api-key)"
        )
        self.usage_plan.add_api_key(self.api_key)
        if config.cors_origins:
            self._cors_on_gateway_errors(config.cors_origins)

    def _cors_on_gateway_errors(self, origins: tuple[str, ...]) -> None:
        """API Gateway's own errors (403 missing key, 429 throttled, 5XX integration failures)
        need CORS headers too, or the browser hides them behind a CORS error.

        One origin is named as such. With several, a gateway response cannot choose among
        them, so it echoes the request's Origin: these bodies are fixed gateway messages
        ("Forbidden", "Too Many Requests"), without credentials, so no origin learns more from
        them than it would from its own failed request. The application's own answers allow
        only the configured origins.
        """
        origin = f"'{origins[0]}'" if len(origins) == 1 else "method.request.header.Origin"
        for response_type in (apigw.ResponseType.DEFAULT_4_XX, apigw.ResponseType.DEFAULT_5_XX):
            self.rest_api.add_gateway_response(
                f"Cors{response_type.response_type}",
                type=response_type,
                response_headers={
                    "Access-Control-Allow-Origin": origin,
                    "Vary": "'Origin'",
                    "Access-Control-Allow-Headers": "'" + ",".join(CORS_HEADERS) + "'",
                },
            )

    @property
    def url(self) -> str:
        return self.rest_api.url

    def _resource(self, path: str) -> apigw.IResource:
        resource: apigw.IResource = self.rest_api.root
        for part in filter(None, path.strip("/").split("/")):
            resource = resource.get_resource(part) or resource.add_resource(part)
        return resource


def _parameters(route: Route) -> dict[str, bool] | None:
    if "{id+}" in route.path:
        return {"method.request.path.id": True}
    if "{name}" in route.path:
        return {"method.request.path.name": True}
    if route.method == "GET" and route.path == "/v1/documents":
        return {
            "method.request.querystring.limit": False,
            "method.request.querystring.cursor": False,
        }
    return None
