"""Template assertions on the synthesized stacks (dev/domain, dev/serverless, prod/domain)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infrastructure.conftest import Synth
from tests.infrastructure.helpers import (
    as_list,
    function_role,
    identity_statements,
    mentions,
    methods,
    role_actions,
    role_statements,
)

# The only actions allowed on Resource "*": they have no resource-level permissions.
WILDCARD_RESOURCE_ALLOWED = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})

EXPECTED_ROUTES = {
    ("GET", "/v1/health"): "chat",
    ("GET", "/"): "chat",
    ("GET", "/playground"): "chat",
    ("GET", "/playground/{name}"): "chat",
    ("POST", "/v1/chat"): "stream",
    ("POST", "/v1/query"): "stream",
    ("POST", "/v1/chat/completions"): "stream",
    ("GET", "/v1/models"): "stream",
    ("POST", "/v1/files"): "indexer",
    ("POST", "/v1/search"): "query",
    ("POST", "/v1/embeddings"): "query",
    ("POST", "/agent/query"): "query",
    ("POST", "/v1/documents"): "indexer",
    ("GET", "/v1/documents"): "indexer",
    ("GET", "/v1/documents/{id+}"): "indexer",
    ("DELETE", "/v1/documents/{id+}"): "indexer",
    ("POST", "/agent/knowledge"): "indexer",
    ("POST", "/v1/uploads"): "indexer",
}
# conftest's variants: the serverless one is synthesized for x86_64, the others for arm64.
ARCHITECTURE = {"dev": "arm64", "serverless": "x86_64", "prod": "arm64"}


PUBLIC_PAGES = {"/", "/playground", "/playground/{name}"}


def fn_id(synth: Synth, name: str) -> str:
    return synth.logical_id(getattr(synth.stack, name).function.node.default_child)


def target_id(synth: Synth, name: str) -> str:
    """What API Gateway and the event source invoke (the alias when SnapStart is on)."""
    target = getattr(synth.stack, name).target
    return synth.logical_id(target.node.default_child)


def role_id(synth: Synth, name: str) -> str:
    return function_role(synth.template, fn_id(synth, name))


def init_role_id(synth: Synth) -> str:
    return function_role(
        synth.template, synth.logical_id(synth.stack.bootstrap.handler.function.node.default_child)
    )


def env_of(synth: Synth, name: str) -> dict[str, Any]:
    props = synth.resources[fn_id(synth, name)]["Properties"]
    return dict(props["Environment"]["Variables"])


ALL = pytest.mark.parametrize("variant", ["dev", "serverless", "prod"])


# ---------------------------------------------------------------- API


@ALL
def test_each_route_reaches_its_function(synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    found = methods(synth.template)
    routed = {key: props for key, props in found.items() if key[0] != "OPTIONS"}
    assert set(routed) == set(EXPECTED_ROUTES)
    for key, function in EXPECTED_ROUTES.items():
        integration = routed[key]["Integration"]
        assert integration["Type"] == "AWS_PROXY", key
        assert integration.get("ResponseTransferMode") == ("STREAM" if function == "stream" else None)
        assert integration["IntegrationHttpMethod"] == "POST", key
        expected = target_id(synth, function)
        assert mentions(integration["Uri"], expected), (key, expected)
        for other in {"chat", "query", "indexer", "stream"} - {function}:
            assert not mentions(integration["Uri"], target_id(synth, other)), (key, other)


@ALL
def test_every_method_requires_an_api_key(synths: dict[str, Synth], variant: str) -> None:
    for (verb, path), props in methods(synths[variant].template).items():
        if verb == "OPTIONS":  # CORS preflight: browsers never send the key
            assert props.get("ApiKeyRequired") in (None, False)
            continue
        if path in PUBLIC_PAGES:  # the playground's static page asks for the key
            assert props["ApiKeyRequired"] is False, (verb, path)
            continue
        assert props["ApiKeyRequired"] is True, (verb, path)


def test_post_bodies_are_validated_and_ids_are_greedy(dev: Synth) -> None:
    validators = dev.of_type("AWS::ApiGateway::RequestValidator")
    assert len(validators) == 1
    ((validator_id, validator),) = validators.items()
    assert validator["Properties"]["ValidateRequestBody"] is True
    models = dev.of_type("AWS::ApiGateway::Model")
    ((model_id, model),) = models.items()
    assert model["Properties"]["Schema"]["minProperties"] == 1
    for (verb, path), props in methods(dev.template).items():
        if verb == "POST":
            assert props["RequestValidatorId"] == {"Ref": validator_id}, path
            assert props["RequestModels"] == {"application/json": {"Ref": model_id}}, path
        if "{id+}" in path:
            assert props["RequestParameters"] == {"method.request.path.id": True}


def test_usage_plan_stage_and_access_logs(dev: Synth) -> None:
    (plan,) = dev.of_type("AWS::ApiGateway::UsagePlan").values()
    props = plan["Properties"]
    assert props["Throttle"] == {"RateLimit": 5, "BurstLimit": 10}
    assert props["Quota"] == {"Limit": 5000, "Period": "DAY"}
    (stage,) = dev.of_type("AWS::ApiGateway::Stage").values()
    stage_props = stage["Properties"]
    assert stage_props["StageName"] == "dev"
    assert stage_props["TracingEnabled"] is True
    assert "DestinationArn" in stage_props["AccessLogSetting"]
    assert json.loads(stage_props["AccessLogSetting"]["Format"])["status"] == "$context.status"
    (setting,) = stage_props["MethodSettings"]
    assert setting["DataTraceEnabled"] is False  # bodies never reach the logs
    assert len(dev.of_type("AWS::ApiGateway::UsagePlanKey")) == 1


def test_cors_only_when_configured(dev: Synth, prod: Synth) -> None:
    assert not [k for k in methods(dev.template) if k[0] == "OPTIONS"]
    prod_options = [k for k in methods(prod.template) if k[0] == "OPTIONS"]
    assert ("OPTIONS", "/v1/chat") in prod_options
    responses = prod.of_type("AWS::ApiGateway::GatewayResponse").values()
    origins = {
        r["Properties"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        for r in responses
    }
    assert origins == {"method.request.header.Origin"}  # two origins: see test_production_review


# ---------------------------------------------------------------- IAM


@ALL
def test_chat_role_reads_the_secret_only(synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    actions = role_actions(synth.template, role_id(synth, "chat"))
    forbidden = [a for a in actions if a.split(":")[0] in {"es", "aoss", "s3", "dynamodb", "sqs"}]
    assert forbidden == []
    assert {"secretsmanager:GetSecretValue"} <= actions
    secret_id = synth.logical_id(synth.stack.secret.secret.node.default_child)
    for statement in role_statements(synth.template, role_id(synth, "chat")):
        if any(a.startswith("secretsmanager:") for a in statement.actions):
            assert statement.resources == [{"Ref": secret_id}]


@ALL
def test_only_the_indexer_reads_the_bucket_and_writes_table_and_index(
    synths: dict[str, Synth], variant: str
) -> None:
    synth = synths[variant]
    indexer, init = role_id(synth, "indexer"), init_role_id(synth)
    for statement in identity_statements(synth.template):
        if not statement.allows:
            continue
        actions = set(statement.actions)
        if actions & {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}:
            assert statement.roles == (indexer,), statement
        if actions & {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"}:
            assert statement.roles == (indexer,), statement
        if actions & {"es:ESHttpPut", "es:ESHttpDelete"}:
            assert statement.roles in ((indexer,), (init,)), statement
        if "es:ESHttpDelete" in actions:
            assert statement.roles == (indexer,)
    if variant != "serverless":
        query_actions = {
            a for a in role_actions(synth.template, role_id(synth, "query")) if a.startswith("es:")
        }
        assert query_actions == {"es:ESHttpGet", "es:ESHttpPost"}


def test_indexer_has_exactly_its_table_and_object_permissions(dev: Synth) -> None:
    statements = role_statements(dev.template, role_id(dev, "indexer"))
    table_id = dev.logical_id(dev.stack.registry.table.node.default_child)
    (table_statement,) = [s for s in statements if any(a.startswith("dynamodb:") for a in s.actions)]
    assert set(table_statement.actions) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan",
    }  # fmt: skip
    assert table_statement.resources == [{"Fn::GetAtt": [table_id, "Arn"]}]
    s3_actions = {a for s in statements for a in s.actions if a.startswith("s3:")}
    assert s3_actions == {
        "s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject",
    }  # fmt: skip
    sqs_actions = {a for s in statements for a in s.actions if a.startswith("sqs:")}
    assert "sqs:ReceiveMessage" in sqs_actions and "sqs:SendMessage" not in sqs_actions


@ALL
def test_no_wildcard_resource_where_an_arn_exists(synths: dict[str, Synth], variant: str) -> None:
    offenders = []
    for statement in identity_statements(synths[variant].template):
        if statement.allows and "*" in statement.resources:
            extra = set(statement.actions) - WILDCARD_RESOURCE_ALLOWED
            if extra:
                offenders.append((statement.source, sorted(extra)))
    assert offenders == []


@ALL
def test_no_managed_policies_on_function_roles(synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    for name in ("chat", "query", "indexer"):
        role = synth.resources[role_id(synth, name)]["Properties"]
        assert "ManagedPolicyArns" not in role, name


# ---------------------------------------------------------------- functions


@ALL
def test_function_defaults(synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    for name in ("chat", "query", "indexer"):
        props = synth.resources[fn_id(synth, name)]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == [ARCHITECTURE[variant]]
        assert props["Handler"] == "handler.handler"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert len(props["Layers"]) == 2
        assert (props.get("SnapStart") is not None) == (variant == "prod")
    for layer in synth.of_type("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleArchitectures"] == [ARCHITECTURE[variant]]
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]


@ALL
def test_environment_names_and_no_secret_values(synths: dict[str, Synth], variant: str) -> None:
    synth = synths[variant]
    common = {
        "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL",
        "UPSTAGE_SECRET_ID", "UPSTAGE_BASE_URL", "UPSTAGE_CHAT_MODEL",
        "UPSTAGE_EMBEDDING_QUERY_MODEL", "UPSTAGE_EMBEDDING_PASSAGE_MODEL", "EMBEDDING_DIMENSIONS",
        "VECTOR_STORE", "OPENSEARCH_ENDPOINT", "OPENSEARCH_TARGET", "OPENSEARCH_INDEX",
    }  # fmt: skip
    for name in ("chat", "query", "indexer"):
        env = env_of(synth, name)
        assert common <= set(env), name
        assert "UPSTAGE_API_KEY" not in env
        assert env["VECTOR_STORE"] == "opensearch"
        assert env["OPENSEARCH_INDEX"] == "rag-chunks"
        assert env["OPENSEARCH_TARGET"] == ("serverless" if variant == "serverless" else "domain")
    indexer = env_of(synth, "indexer")
    assert {"DOCUMENTS_TABLE", "DOCUMENTS_BUCKET", "MAX_OBJECT_BYTES"} <= set(indexer)
    assert "DOCUMENTS_TABLE" not in env_of(synth, "chat")
    (secret,) = synth.of_type("AWS::SecretsManager::Secret").values()
    assert "SecretString" not in secret["Properties"]
    assert "GenerateSecretString" in secret["Properties"]


def test_snap_start_routes_through_the_live_alias(prod: Synth) -> None:
    for name in ("chat", "query", "indexer"):
        props = prod.resources[fn_id(prod, name)]["Properties"]
        assert props["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        alias = prod.resources[target_id(prod, name)]
        assert alias["Type"] == "AWS::Lambda::Alias"
        assert alias["Properties"]["Name"] == "live"
        # Replaced versions are deleted: each cached snapshot is billed while its version exists.
        version = prod.resources[alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]]
        assert version["Type"] == "AWS::Lambda::Version"
        assert version["DeletionPolicy"] == "Delete"
    (mapping,) = prod.of_type("AWS::Lambda::EventSourceMapping").values()
    assert mentions(mapping["Properties"]["FunctionName"], target_id(prod, "indexer"))


# ---------------------------------------------------------------- ingestion


def test_queue_dlq_and_event_source(dev: Synth) -> None:
    queue_id = dev.logical_id(dev.stack.ingestion.queue.node.default_child)
    dlq_id = dev.logical_id(dev.stack.ingestion.dead_letters.node.default_child)
    queue = dev.resources[queue_id]["Properties"]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": 5,
    }
    assert queue["SqsManagedSseEnabled"] is True
    indexer_timeout = dev.resources[fn_id(dev, "indexer")]["Properties"]["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * indexer_timeout
    (mapping,) = dev.of_type("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert props["BatchSize"] == 10
    assert props["MaximumBatchingWindowInSeconds"] == 5
    assert props["ScalingConfig"] == {"MaximumConcurrency": 2}


def test_bucket_notifies_the_queue_without_a_custom_resource(dev: Synth) -> None:
    bucket_id = dev.logical_id(dev.stack.ingestion.bucket.node.default_child)
    queue_id = dev.logical_id(dev.stack.ingestion.queue.node.default_child)
    bucket = dev.resources[bucket_id]
    configs = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert {c["Event"] for c in configs} == {"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}
    assert all(c["Queue"] == {"Fn::GetAtt": [queue_id, "Arn"]} for c in configs)
    assert not dev.of_type("Custom::S3BucketNotifications")
    # The queue policy (S3 may send) exists before CloudFormation validates the destination.
    policies = [k for k, r in dev.of_type("AWS::SQS::QueuePolicy").items() if mentions(r, queue_id)]
    assert set(policies) <= set(bucket["DependsOn"])
    (policy,) = [dev.resources[p] for p in policies]
    allow = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow[0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert "aws:SourceArn" in allow[0]["Condition"]["ArnEquals"]


def test_bucket_settings_and_tls_only_policy(dev: Synth) -> None:
    bucket_id = dev.logical_id(dev.stack.ingestion.bucket.node.default_child)
    props = dev.resources[bucket_id]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True,
        "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }  # fmt: skip
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"expire-noncurrent-versions", "expire-document-parse-requests"}
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "documents/"
    (policy,) = [
        r
        for r in dev.of_type("AWS::S3::BucketPolicy").values()
        if r["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_registry_table(dev: Synth) -> None:
    (table,) = dev.of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "document_id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "document_id", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


# ---------------------------------------------------------------- vector store


def test_domain_settings_and_access_policy(dev: Synth) -> None:
    (domain,) = dev.of_type("AWS::OpenSearchService::Domain").values()
    props = domain["Properties"]
    assert props["EngineVersion"].startswith("OpenSearch_")
    assert props["ClusterConfig"]["InstanceType"] == "t3.small.search"
    assert props["ClusterConfig"]["InstanceCount"] == 1
    assert props["ClusterConfig"]["MultiAZWithStandbyEnabled"] is False
    assert props["EBSOptions"]["VolumeType"] == "gp3"
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert "TLS-1-2" in props["DomainEndpointOptions"]["TLSSecurityPolicy"]
    principals = []
    for statement in props["AccessPolicies"]["Statement"]:
        assert statement["Effect"] == "Allow"
        principals += as_list(statement["Principal"]["AWS"])
    # Only role ARNs (no "*", no account root): no anonymous access.
    assert all(set(p) == {"Fn::GetAtt"} and p["Fn::GetAtt"][1] == "Arn" for p in principals)
    roles = {p["Fn::GetAtt"][0] for p in principals}
    assert roles == {role_id(dev, "query"), role_id(dev, "stream"), role_id(dev, "indexer"),
                     init_role_id(dev)}
    assert role_id(dev, "chat") not in roles


def test_prod_domain_is_zone_aware(prod: Synth) -> None:
    (domain,) = prod.of_type("AWS::OpenSearchService::Domain").values()
    cluster = domain["Properties"]["ClusterConfig"]
    assert cluster["ZoneAwarenessEnabled"] is True
    assert cluster["InstanceCount"] == 2
    assert domain["DeletionPolicy"] == "Retain"


def test_serverless_collection_and_policies(serverless: Synth) -> None:
    (collection,) = serverless.of_type("AWS::OpenSearchServerless::Collection").values()
    assert collection["Properties"]["Type"] == "VECTORSEARCH"
    name = collection["Properties"]["Name"]
    policies = {
        r["Properties"]["Type"]: r["Properties"]["Policy"]
        for r in serverless.of_type("AWS::OpenSearchServerless::SecurityPolicy").values()
    }
    assert json.loads(policies["encryption"])["AWSOwnedKey"] is True
    assert json.loads(policies["network"])[0]["Rules"][0]["Resource"] == [f"collection/{name}"]
    (data,) = serverless.of_type("AWS::OpenSearchServerless::AccessPolicy").values()
    rendered = json.dumps(data["Properties"]["Policy"])
    for role in (role_id(serverless, "query"), role_id(serverless, "indexer"), init_role_id(serverless)):
        assert f'"{role}"' in rendered
    assert f'"{role_id(serverless, "chat")}"' not in rendered
    for name_ in ("query", "indexer"):
        statements = role_statements(serverless.template, role_id(serverless, name_))
        (aoss,) = [s for s in statements if "aoss:APIAccessAll" in s.actions]
        assert aoss.resources[0]["Fn::GetAtt"][1] == "Arn"
    assert not serverless.of_type("AWS::OpenSearchService::Domain")


def test_init_custom_resource(dev: Synth, serverless: Synth) -> None:
    for synth in (dev, serverless):
        (resource,) = synth.of_type("Custom::OpenSearchIndex").values()
        assert resource["Properties"]["Index"] == "rag-chunks"
        assert resource["Properties"]["Dimensions"] == "1024"
    (sl_resource,) = serverless.of_type("Custom::OpenSearchIndex").values()
    policy_id = serverless.logical_id(serverless.stack.vector_store.data_policy)
    assert policy_id in sl_resource["DependsOn"]
    init_actions = role_actions(dev.template, init_role_id(dev))
    assert not {a for a in init_actions if a.startswith(("s3:", "dynamodb:", "secretsmanager:"))}
    admin = [s for s in role_statements(dev.template, init_role_id(dev)) if "es:ESHttpPut" in s.actions]
    rendered = json.dumps([s.resources for s in admin])
    assert "/rag-chunks*" in rendered and "/_search/pipeline/rag-chunks*" in rendered
    assert '/*"' not in rendered


# ---------------------------------------------------------------- monitoring and outputs


def test_alarms(dev: Synth, prod: Synth) -> None:
    alarms = list(dev.of_type("AWS::CloudWatch::Alarm").values())
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms:
        by_metric.setdefault(alarm["Properties"]["MetricName"], []).append(alarm["Properties"])
    (dlq,) = by_metric["ApproximateNumberOfMessagesVisible"]
    assert dlq["Threshold"] == 0 and dlq["ComparisonOperator"] == "GreaterThanThreshold"
    assert len(by_metric["Errors"]) == 4 and len(by_metric["Throttles"]) == 4
    (latency,) = by_metric["Latency"]
    assert latency["ExtendedStatistic"] == "p95"
    assert len(by_metric["5XXError"]) == 1
    assert len(dev.of_type("AWS::CloudWatch::Dashboard")) == 1
    assert all("AlarmActions" not in a["Properties"] for a in alarms)
    prod_alarms = prod.of_type("AWS::CloudWatch::Alarm").values()
    assert all(a["Properties"]["AlarmActions"] for a in prod_alarms)
    (topic,) = prod.of_type("AWS::SNS::Topic").values()
    assert "KmsMasterKeyId" in topic["Properties"]


def test_outputs(dev: Synth) -> None:
    assert set(dev.template["Outputs"]) >= {
        "ApiUrl", "ApiKeyId", "DocumentsBucketName", "DocumentsTableName",
        "UpstageSecretName", "OpenSearchEndpoint", "DeadLetterQueueUrl",
    }  # fmt: skip
