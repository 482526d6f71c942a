"""The one Lambda factory: every function of the stack gets the same defaults from here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra_cdk.config import RETENTION_DAYS, FunctionSizing, UpstageConfig
from infra_cdk.constructs.layers import RUNTIME, function_code, handler_missing
from infra_cdk.nag import PYTHON_RUNTIME_REASON, XRAY_REASON, acknowledge


def retention(days: int) -> logs.RetentionDays:
    """The ``RetentionDays`` member for a number of days (validated in config)."""
    # RetentionDays lists the finite periods in the order of RETENTION_DAYS, then INFINITE.
    finite = [member for member in logs.RetentionDays if member is not logs.RetentionDays.INFINITE]
    by_days = dict(zip(RETENTION_DAYS, finite, strict=True))
    if days not in by_days:
        raise ValueError(f"CloudWatch Logs has no retention of {days} days")
    return by_days[days]


@dataclass(frozen=True)
class FunctionEnvironment:
    """The settings a function reads (names as in ``solar_rag.settings.Settings``).

    Only names and identifiers go here: the Upstage key stays in Secrets Manager and the
    functions read it through ``UPSTAGE_SECRET_ID``.
    """

    service_name: str
    metrics_namespace: str
    log_level: str
    upstage: UpstageConfig | None = None
    upstage_secret_id: str | None = None
    opensearch_endpoint: str | None = None
    opensearch_target: str | None = None
    opensearch_index: str | None = None
    documents_table: str | None = None
    documents_bucket: str | None = None
    max_object_bytes: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def to_env(self) -> dict[str, str]:
        env = {
            "POWERTOOLS_SERVICE_NAME": self.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace,
            "POWERTOOLS_LOG_LEVEL": self.log_level,
        }
        if self.upstage is not None:
            env |= {
                "UPSTAGE_BASE_URL": self.upstage.base_url,
                "UPSTAGE_CHAT_MODEL": self.upstage.chat_model,
                "UPSTAGE_EMBEDDING_QUERY_MODEL": self.upstage.embedding_query_model,
                "UPSTAGE_EMBEDDING_PASSAGE_MODEL": self.upstage.embedding_passage_model,
                "EMBEDDING_DIMENSIONS": str(self.upstage.embedding_dimensions),
            }
        optional = {
            "UPSTAGE_SECRET_ID": self.upstage_secret_id,
            "OPENSEARCH_ENDPOINT": self.opensearch_endpoint,
            "OPENSEARCH_TARGET": self.opensearch_target,
            "OPENSEARCH_INDEX": self.opensearch_index,
            "DOCUMENTS_TABLE": self.documents_table,
            "DOCUMENTS_BUCKET": self.documents_bucket,
            "MAX_OBJECT_BYTES": None if self.max_object_bytes is None else str(self.max_object_bytes),
        }
        env |= {key: value for key, value in optional.items() if value is not None}
        if self.opensearch_endpoint is not None:
            env["VECTOR_STORE"] = "opensearch"
        return env | dict(self.extra)


@dataclass(frozen=True)
class LambdaDefaults:
    """What every function of the stack shares."""

    layers: Sequence[lambda_.ILayerVersion]
    architecture: lambda_.Architecture
    log_retention: logs.RetentionDays
    log_removal_policy: cdk.RemovalPolicy
    snap_start: bool = False


@dataclass(frozen=True)
class RagFunction:
    function: lambda_.Function
    # What API Gateway and event sources invoke: the "live" alias when SnapStart is on
    # (snapshots only exist for published versions), the function itself otherwise.
    target: lambda_.IFunction
    role: iam.Role
    log_group: logs.LogGroup


def create_function(
    scope: Construct,
    construct_id: str,
    *,
    code_name: str,
    description: str,
    sizing: FunctionSizing,
    environment: FunctionEnvironment,
    defaults: LambdaDefaults,
    snap_start: bool | None = None,
    handler: str = "handler.handler",
    extra_layers: Sequence[lambda_.ILayerVersion] = (),
) -> RagFunction:
    """A Python 3.12 function running ``functions/<code_name>/handler.py:handler``.

    Own role (no managed policies: log writing is granted on its own log group), own log
    group with retention, JSON logs, X-Ray active tracing, the shared layers.
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=defaults.log_retention,
        removal_policy=defaults.log_removal_policy,
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Execution role of the {code_name} function",
    )
    log_group.grant_write(role)
    use_snap_start = defaults.snap_start if snap_start is None else snap_start
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=RUNTIME,
        architecture=defaults.architecture,
        handler=handler,
        code=function_code(code_name),
        layers=[*defaults.layers, *extra_layers],
        memory_size=sizing.memory_mb,
        timeout=cdk.Duration.seconds(sizing.timeout_seconds),
        environment=environment.to_env(),
        role=role,
        log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        tracing=lambda_.Tracing.ACTIVE,
        snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if use_snap_start else None,
        reserved_concurrent_executions=sizing.max_concurrency,
        # SnapStart bills the snapshot cache of every published version while it exists:
        # versions replaced by a deploy are deleted (CDK keeps them by default).
        current_version_options=lambda_.VersionOptions(removal_policy=cdk.RemovalPolicy.DESTROY)
        if use_snap_start
        else None,
    )
    acknowledge(function, "AwsSolutions-L1", PYTHON_RUNTIME_REASON)
    acknowledge(role, "AwsSolutions-IAM5[Resource::*]", XRAY_REASON)
    if handler_missing(code_name):
        cdk.Annotations.of(function).add_warning_v2(
            "solar-rag:missing-handler",
            f"functions/{code_name}/handler.py does not exist yet: the function would fail",
        )
    target: lambda_.IFunction = function
    if use_snap_start:
        target = lambda_.Alias(
            scope, f"{construct_id}Live", alias_name="live", version=function.current_version
        )
    return RagFunction(function=function, target=target, role=role, log_group=log_group)
