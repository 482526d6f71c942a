"""What a review before the first production deploy asks of the templates (issue 15): alarms
that reach someone, CORS on real answers, OpenSearch permissions per path, Upstage quota
shares that hold across containers, names that survive a destroy and redeploy."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infrastructure.conftest import Synth
from tests.infrastructure.helpers import (
    as_list,
    identity_statements,
    methods,
    render,
    role_statements,
)
from tests.infrastructure.test_stack import env_of, fn_id, init_role_id, role_id

ALL = pytest.mark.parametrize("variant", ["dev", "serverless", "prod"])
PROD_ORIGINS = ("https://app.example.com", "https://admin.example.com")
CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}
# Upstage's default quota per embedding model (docs/deploy.md, "Upstage rate limit shares").
UPSTAGE_RPM, UPSTAGE_TPM = 100, 300_000


# ---------------------------------------------------------------- alarms


def test_alarm_topic_uses_a_key_and_a_policy_cloudwatch_can_use(prod: Synth) -> None:
    ((topic_id, topic),) = prod.of_type("AWS::SNS::Topic").items()
    key_ref = topic["Properties"]["KmsMasterKeyId"]
    # CloudWatch cannot use the AWS-managed alias/aws/sns key: its policy cannot be changed.
    assert isinstance(key_ref, dict), f"topic encrypted with {key_ref!r}"
    key_id = key_ref["Ref"] if "Ref" in key_ref else key_ref["Fn::GetAtt"][0]
    key = prod.resources[key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    (for_cloudwatch,) = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal") == CLOUDWATCH
    ]
    assert for_cloudwatch["Effect"] == "Allow"
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(as_list(for_cloudwatch["Action"]))
    assert "aws:SourceAccount" in json.dumps(for_cloudwatch["Condition"])

    (policy,) = [
        r for r in prod.of_type("AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in r["Properties"]["Topics"]
    ]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (publish,) = [s for s in statements if s["Effect"] == "Allow" and s.get("Principal") == CLOUDWATCH]
    assert as_list(publish["Action"]) == ["sns:Publish"]
    assert publish["Resource"] == {"Ref": topic_id}
    assert "aws:SourceAccount" in publish["Condition"]["StringEquals"]
    source_arn = render(publish["Condition"]["ArnLike"]["aws:SourceArn"])
    assert ":cloudwatch:" in source_arn and ":alarm:" in source_arn, source_arn
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    alarm_prefix = source_arn.split(":alarm:")[1].rstrip("*")
    alarms = prod.of_type("AWS::CloudWatch::Alarm").values()
    assert alarms
    for alarm in alarms:
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["AlarmName"].startswith(alarm_prefix)


# ---------------------------------------------------------------- OpenSearch, per path

QUERY_PATHS = re.compile(r"^rag-chunks\*?/(_search|_msearch)$")
INDEXER_PATHS = re.compile(r"^rag-chunks\*?/(_bulk|_delete_by_query|_refresh|_mapping|_doc/\*)$")
ADMIN_PATHS = {"rag-chunks*", "_search/pipeline/rag-chunks*"}


def _domain_path(resource: Any) -> str:
    match = re.search(r":domain/[^/]+/(.*)$", render(resource))
    assert match, render(resource)
    return match.group(1)


def _es_grants(synth: Synth, role: str) -> set[tuple[str, str]]:
    return {
        (action, _domain_path(resource))
        for statement in role_statements(synth.template, role)
        for action in statement.actions
        if action.startswith("es:")
        for resource in statement.resources
    }


def test_query_role_may_only_search(dev: Synth) -> None:
    grants = _es_grants(dev, role_id(dev, "query"))
    assert grants
    for action, path in grants:
        assert action in {"es:ESHttpGet", "es:ESHttpPost"}, (action, path)
        assert QUERY_PATHS.match(path), path


def test_indexer_may_only_write_documents(dev: Synth) -> None:
    grants = _es_grants(dev, role_id(dev, "indexer"))
    assert {path for _, path in grants} >= {
        "rag-chunks/_bulk", "rag-chunks/_delete_by_query", "rag-chunks/_refresh",
    }
    for action, path in grants:
        assert INDEXER_PATHS.match(path), path
        if action in {"es:ESHttpPut", "es:ESHttpDelete"}:
            assert path.endswith("/_doc/*"), (action, path)


def test_only_the_init_function_manages_indices_aliases_and_the_pipeline(dev: Synth) -> None:
    init = init_role_id(dev)
    assert {path for _, path in _es_grants(dev, init)} == ADMIN_PATHS
    assert "es:ESHttpDelete" not in {action for action, _ in _es_grants(dev, init)}
    for statement in identity_statements(dev.template):
        if init in statement.roles or not any(a.startswith("es:") for a in statement.actions):
            continue
        for resource in statement.resources:
            path = _domain_path(resource)
            assert path not in ADMIN_PATHS, path
            assert "_alias" not in path and "pipeline" not in path and path != "*", path


def test_domain_access_policy_mirrors_each_role_exactly(dev: Synth) -> None:
    (domain,) = dev.of_type("AWS::OpenSearchService::Domain").values()
    granted: dict[str, set[tuple[str, str]]] = {}
    for statement in domain["Properties"]["AccessPolicies"]["Statement"]:
        assert statement["Effect"] == "Allow"
        for principal in as_list(statement["Principal"]["AWS"]):
            role = principal["Fn::GetAtt"][0]
            granted.setdefault(role, set()).update(
                (action, _domain_path(resource))
                for action in as_list(statement["Action"])
                for resource in as_list(statement["Resource"])
            )
    for role in (role_id(dev, "query"), role_id(dev, "indexer"), init_role_id(dev)):
        assert granted[role] == _es_grants(dev, role), role


def _aoss_permissions(synth: Synth) -> dict[str, dict[str, set[str]]]:
    (policy,) = synth.of_type("AWS::OpenSearchServerless::AccessPolicy").values()
    found: dict[str, dict[str, set[str]]] = {}
    for item in json.loads(render(policy["Properties"]["Policy"])):
        for principal in item["Principal"]:
            role = principal.strip("<>").split(".")[0]
            for rule in item["Rules"]:
                found.setdefault(role, {}).setdefault(rule["ResourceType"], set()).update(rule["Permission"])
    return found


def test_serverless_data_access_policy_per_role(serverless: Synth) -> None:
    permissions = _aoss_permissions(serverless)
    assert permissions[role_id(serverless, "query")] == {"index": {"aoss:ReadDocument"}}
    assert permissions[role_id(serverless, "stream")] == {"index": {"aoss:ReadDocument"}}
    assert permissions[role_id(serverless, "indexer")] == {
        "index": {"aoss:ReadDocument", "aoss:WriteDocument", "aoss:DescribeIndex"}
    }
    init = permissions[init_role_id(serverless)]
    assert {"aoss:CreateIndex", "aoss:UpdateIndex"} <= init["index"]
    assert not init["index"] & {"aoss:DeleteIndex", "aoss:WriteDocument"}
    assert role_id(serverless, "chat") not in permissions
    assert set(permissions) == {
        role_id(serverless, "query"), role_id(serverless, "stream"), role_id(serverless, "indexer"),
        init_role_id(serverless)
    }


# ---------------------------------------------------------------- CORS


def test_cors_origins_reach_the_functions_and_the_gateway_errors(prod: Synth, dev: Synth) -> None:
    for name in ("chat", "query", "indexer"):
        assert env_of(prod, name)["CORS_ALLOWED_ORIGINS"] == ",".join(PROD_ORIGINS)
        assert "CORS_ALLOWED_ORIGINS" not in env_of(dev, name)
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]["ResponseParameters"]
        for r in prod.of_type("AWS::ApiGateway::GatewayResponse").values()
    }
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for parameters in responses.values():
        # Several origins: API Gateway echoes the request's Origin on its own (bodiless) errors.
        origin = parameters["gatewayresponse.header.Access-Control-Allow-Origin"]
        assert origin == "method.request.header.Origin"
        assert parameters["gatewayresponse.header.Vary"] == "'Origin'"
    assert not dev.of_type("AWS::ApiGateway::GatewayResponse")


def test_preflight_on_every_route_when_cors_is_configured(prod: Synth) -> None:
    routed = {path for (verb, path) in methods(prod.template) if verb != "OPTIONS"}
    preflights = {path for (verb, path) in methods(prod.template) if verb == "OPTIONS"}
    assert routed <= preflights


def test_browsers_may_put_to_presigned_urls_from_the_allowed_origins(prod: Synth, dev: Synth) -> None:
    bucket = prod.resources[prod.logical_id(prod.stack.ingestion.bucket.node.default_child)]
    (rule,) = bucket["Properties"]["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["PUT"]
    assert rule["AllowedOrigins"] == list(PROD_ORIGINS)
    assert {h.lower() for h in rule["AllowedHeaders"]} == {"content-type", "content-length"}
    dev_bucket = dev.resources[dev.logical_id(dev.stack.ingestion.bucket.node.default_child)]
    assert "CorsConfiguration" not in dev_bucket["Properties"]


# ---------------------------------------------------------------- uploads


@ALL
def test_indexer_presigns_uploads_and_cleans_only_the_queued_prefix(
    synths: dict[str, Synth], variant: str
) -> None:
    synth = synths[variant]
    indexer = role_id(synth, "indexer")
    bucket_id = synth.logical_id(synth.stack.ingestion.bucket.node.default_child)
    found: dict[str, set[str]] = {}
    for statement in identity_statements(synth.template):
        if not statement.allows:
            continue
        for action in set(statement.actions) & {"s3:PutObject", "s3:DeleteObject"}:
            assert statement.roles == (indexer,), statement
            found.setdefault(action, set()).update(render(r) for r in statement.resources)
    assert found["s3:PutObject"] == {f"<{bucket_id}.Arn>/*"}
    assert found["s3:DeleteObject"] == {f"<{bucket_id}.Arn>/.solar-rag/queued/*"}


# ---------------------------------------------------------------- Upstage quota shares


@ALL
def test_upstage_shares_times_max_concurrency_fit_the_quota(synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    requests = tokens = 0
    for name in ("query", "indexer"):
        props = synth.resources[fn_id(synth, name)]["Properties"]
        concurrency = props["ReservedConcurrentExecutions"]
        env = env_of(synth, name)
        rpm, tpm = int(env["UPSTAGE_REQUESTS_PER_MINUTE"]), int(env["UPSTAGE_TOKENS_PER_MINUTE"])
        assert rpm >= 1 and tpm >= 1
        requests += rpm * concurrency
        tokens += tpm * concurrency
    assert requests <= UPSTAGE_RPM and tokens <= UPSTAGE_TPM
    assert requests >= 0.8 * UPSTAGE_RPM and tokens >= 0.8 * UPSTAGE_TPM, "most of the quota is used"
    (mapping,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    indexer = synth.resources[fn_id(synth, "indexer")]["Properties"]
    # S3 batches never take every indexer slot: HTTP indexing keeps at least one.
    assert mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"] < indexer["ReservedConcurrentExecutions"]
    assert "UPSTAGE_REQUESTS_PER_MINUTE" not in env_of(synth, "chat")  # chat embeds nothing


# ---------------------------------------------------------------- account-wide and naming


@ALL
def test_no_account_wide_api_gateway_role_in_the_stage_stack(synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    assert not synth.of_type("AWS::ApiGateway::Account")
    for role in synth.of_type("AWS::IAM::Role").values():
        assert "apigateway.amazonaws.com" not in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])


def test_api_gateway_logging_role_is_its_own_retained_stack(dev: Synth) -> None:
    from infra_cdk.app import API_GATEWAY_ACCOUNT_STACK

    stack = dev.stack.node.scope.node.find_child(API_GATEWAY_ACCOUNT_STACK)
    assert stack in dev.stack.dependencies
    template = dev.stack.node.scope.synth().get_stack_by_name(API_GATEWAY_ACCOUNT_STACK).template
    resources = template["Resources"]
    (account,) = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Account"]
    role_ref = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert resources[role_ref]["DeletionPolicy"] == "Retain"


def test_rest_api_name_is_distinct_per_stage(dev: Synth, prod: Synth) -> None:
    (dev_api,) = dev.of_type("AWS::ApiGateway::RestApi").values()
    (prod_api,) = prod.of_type("AWS::ApiGateway::RestApi").values()
    assert dev_api["Properties"]["Name"] == "solar-rag-dev-api"
    assert prod_api["Properties"]["Name"] == "solar-rag-prod-api"


def test_domain_tls_policy_has_forward_secrecy(dev: Synth, prod: Synth) -> None:
    for synth in (dev, prod):
        (domain,) = synth.of_type("AWS::OpenSearchService::Domain").values()
        assert domain["Properties"]["DomainEndpointOptions"]["TLSSecurityPolicy"].endswith("PFS-2023-10")


def test_access_logs_carry_integration_latency_and_errors(dev: Synth) -> None:
    (stage,) = dev.of_type("AWS::ApiGateway::Stage").values()
    fields = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])
    assert fields["integrationLatency"] == "$context.integrationLatency"
    assert fields["integrationStatus"] == "$context.integration.status"
    assert fields["integrationError"] == "$context.integration.error"
    assert fields["errorMessage"] == "$context.error.message"
    assert fields["status"] == "$context.status"


@ALL
def test_retained_resources_get_names_unique_to_the_stack_instance(
    synths: dict[str, Synth], variant: str
) -> None:
    """A retained bucket or domain must not block a redeploy after ``cdk destroy``."""
    synth = synths[variant]
    bucket = synth.resources[synth.logical_id(synth.stack.ingestion.bucket.node.default_child)]
    assert "AWS::StackId" in json.dumps(bucket["Properties"]["BucketName"])
    for domain in synth.of_type("AWS::OpenSearchService::Domain").values():
        assert "AWS::StackId" in json.dumps(domain["Properties"]["DomainName"])


def _preflight_allow_origin(integration: dict[str, Any], origin: str) -> str:
    """What API Gateway's MOCK preflight answers for ``origin``: the static header, overridden
    by the response template when the request's Origin is one of the other allowed origins."""
    (response,) = integration["IntegrationResponses"]
    allowed = response["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"].strip("'")
    template = response["ResponseTemplates"]["application/json"]
    condition = re.search(r"#if\((\$origin == \"[^\"]*\"(?: \|\| \$origin == \"[^\"]*\")*)\)\s*\n\s*#set\("
                          r"\$context\.responseOverride\.header\.Access-Control-Allow-Origin = \$origin\)",
                          template)
    overrides = re.findall(r"\$origin == \"([^\"]*)\"", condition.group(1)) if condition else []
    return origin if origin in overrides else allowed


def test_browser_preflight_from_each_allowed_origin(prod: Synth) -> None:
    """Browser-shaped preflight (Origin header, OPTIONS) against the synthesized MOCK integration."""
    for (verb, path), props in methods(prod.template).items():
        if verb != "OPTIONS":
            continue
        integration = props["Integration"]
        assert integration["Type"] == "MOCK"
        for origin in PROD_ORIGINS:
            assert _preflight_allow_origin(integration, origin) == origin, (path, origin)
        assert _preflight_allow_origin(integration, "https://evil.example.net") not in (
            "https://evil.example.net", "*"
        )
        parameters = integration["IntegrationResponses"][0]["ResponseParameters"]
        methods_allowed = parameters["method.response.header.Access-Control-Allow-Methods"]
        assert "POST" in methods_allowed and "DELETE" in methods_allowed
        assert "X-Api-Key" in parameters["method.response.header.Access-Control-Allow-Headers"]
