"""OpenSearch k-NN store: a managed domain (default) or an OpenSearch Serverless collection.

Both variants expose the same small interface (endpoint, target, three grant levels). Each
grant adds the identity policy at once; ``finalize()`` (called by the stack after the last
grant, enforced by a validation) renders the resource-side policy (domain access policy /
AOSS data access policy) from the same grants, level by level, so neither side widens the
other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchserverless as aoss
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct, IValidation
from solar_rag.resilience import retry

from infra_cdk.config import DeployConfig, FunctionSizing
from infra_cdk.constructs.functions import (
    FunctionEnvironment,
    LambdaDefaults,
    create_function,
    retention,
)
from infra_cdk.constructs.ingestion import stack_instance_suffix
from infra_cdk.nag import acknowledge, acknowledge_wildcard_resource

Level = Literal["read", "write", "admin", "reindex"]

# Per level, the (HTTP verbs, URL paths under the domain) each role may use; "{alias}"
# is the index alias, "{alias}*" also covers its versioned indices (rag-chunks-v1, ...).
# Mirrors what solar_rag.adapters.opensearch sends: search and _msearch (query); _bulk,
# _delete_by_query, _refresh, the index check (_mapping) and single documents (indexer);
# index, alias and search pipeline management (init function only).
DomainGrant = tuple[tuple[str, ...], tuple[str, ...]]
DOMAIN_GRANTS: dict[Level, tuple[DomainGrant, ...]] = {
    "read": (
        (("es:ESHttpGet", "es:ESHttpPost"), ("{alias}/_search", "{alias}/_msearch")),
    ),
    "write": (
        (("es:ESHttpPost",), ("{alias}/_bulk", "{alias}/_delete_by_query", "{alias}/_refresh")),
        (("es:ESHttpGet",), ("{alias}/_mapping",)),
        (("es:ESHttpGet", "es:ESHttpPut", "es:ESHttpPost", "es:ESHttpDelete"), ("{alias}/_doc/*",)),
    ),
    "admin": (
        (
            ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPut", "es:ESHttpPost"),
            ("{alias}*", "_search/pipeline/{alias}*"),
        ),
    ),
    # `rag reindex` by an operator role (context reindex_principal_arn): create the next
    # versioned index, check mappings, write and search it, delete single documents, and the
    # one atomic alias swap (``POST /_aliases`` has no index in its path).
    "reindex": (
        (("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPut", "es:ESHttpPost"), ("{alias}*",)),
        (("es:ESHttpDelete",), ("{alias}*/_doc/*",)),
        (("es:ESHttpPost",), ("_aliases",)),
    ),
}
# OpenSearch Serverless data access policy: no collection-level rights outside the init
# function; document rights per role (ReadDocument covers _search/_msearch, WriteDocument
# _bulk and deletes, DescribeIndex the index check).
AOSS_COLLECTION_PERMISSIONS: dict[Level, tuple[str, ...]] = {
    "read": (),
    "write": (),
    "admin": (
        "aoss:CreateCollectionItems",
        "aoss:DescribeCollectionItems",
        "aoss:UpdateCollectionItems",
    ),
    "reindex": (),
}
AOSS_INDEX_PERMISSIONS: dict[Level, tuple[str, ...]] = {
    "read": ("aoss:ReadDocument",),
    "write": ("aoss:DescribeIndex", "aoss:ReadDocument", "aoss:WriteDocument"),
    "admin": ("aoss:CreateIndex", "aoss:DescribeIndex", "aoss:UpdateIndex"),
    "reindex": ("aoss:CreateIndex", "aoss:DescribeIndex", "aoss:UpdateIndex",
                "aoss:ReadDocument", "aoss:WriteDocument"),
}


DOMAIN_PATH_REASON: dict[Level, str] = {
    "read": "",
    "write": "Single-document paths of this index alias under this one domain (document ids "
    "are chunk ids); bulk, delete-by-query and refresh are named exactly.",
    "admin": "Limited to this index's paths and its search pipeline under this one domain: "
    "the init function creates the versioned index, its alias and the pipeline.",
    "reindex": "`rag reindex` builds the next versioned index of this alias (<alias>-v<n>) "
    "under this one domain: its paths only, deletes of single documents only.",
}


@dataclass
class _Grants:
    roles: dict[Level, list[iam.IRole]] = field(
        default_factory=lambda: {"read": [], "write": [], "admin": [], "reindex": []}
    )

    def add(self, level: Level, role: iam.IRole) -> None:
        if role not in self.roles[level]:
            self.roles[level].append(role)


@jsii.implements(IValidation)
class _FinalizedCheck:
    def __init__(self, store: VectorStore) -> None:
        self._store = store

    def validate(self) -> list[str]:
        if self._store.finalized:
            return []
        return ["VectorStore.finalize() was not called: its resource policy is empty"]


class VectorStore(Construct):
    """What the functions need to know and be allowed."""

    def __init__(self, scope: Construct, construct_id: str, *, index: str) -> None:
        super().__init__(scope, construct_id)
        self.index = index
        self._grants = _Grants()
        self._finalized = False
        self.node.add_validation(_FinalizedCheck(self))

    def finalize(self) -> None:
        """Write the resource-side policy from the grants made so far (call once, last)."""
        if self._finalized:
            raise RuntimeError("vector store policies were already rendered")
        self._render_resource_policy()
        self._finalized = True

    @property
    def finalized(self) -> bool:
        return self._finalized

    def _render_resource_policy(self) -> None:
        raise NotImplementedError

    endpoint: str
    """``https://host`` of the domain or collection (a token)."""
    target: str
    """``OPENSEARCH_TARGET`` value."""
    ready: IConstruct
    """Depend on this before talking to the store (policies in place)."""

    def grant_read(self, role: iam.IRole) -> None:
        self._grant("read", role)

    def grant_write(self, role: iam.IRole) -> None:
        self._grant("write", role)

    def grant_admin(self, role: iam.IRole) -> None:
        """Create/update the index, its alias and search pipeline: index paths only."""
        self._grant("admin", role)

    def grant_reindex(self, role: iam.IRole, policy: iam.ManagedPolicy) -> list[str]:
        """What `rag reindex` needs, for an operator role the stack does not own: the
        resource side names the role, the identity side goes into ``policy`` (attached to
        it). Returns the wildcard resources ``policy`` got (for their acknowledgement)."""
        if self._finalized:
            raise RuntimeError("grant before finalize(): the resource policy is already rendered")
        self._grants.add("reindex", role)
        statements = self._identity_statements("reindex")
        for statement in statements:
            policy.add_statements(statement)
        return [r for statement in statements for r in statement.resources if r.endswith("*")]

    def _identity_statements(self, level: Level) -> list[iam.PolicyStatement]:
        raise NotImplementedError

    def _grant(self, level: Level, role: iam.IRole) -> None:
        if self._finalized:
            raise RuntimeError("grant before finalize(): the resource policy is already rendered")
        self._grants.add(level, role)
        self._grant_identity(level, role)

    def _grant_identity(self, level: Level, role: iam.IRole) -> None:
        raise NotImplementedError


class DomainStore(VectorStore):
    """A managed OpenSearch Service domain with an IAM-principal access policy."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: DeployConfig, removal: cdk.RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id, index=config.opensearch_index)
        stack = cdk.Stack.of(self)
        settings = config.domain
        # At most 28 characters; unique per stack instance (see stack_instance_suffix).
        self.domain_name = cdk.Fn.join("-", [config.prefix[:19], stack_instance_suffix(self)])
        self.domain_arn = stack.format_arn(service="es", resource="domain", resource_name=self.domain_name)
        log_retention = retention(config.log_retention_days)
        log_groups = {
            kind: logs.LogGroup(self, f"{kind}Logs", retention=log_retention, removal_policy=removal)
            for kind in ("App", "SlowSearch", "SlowIndex")
        }
        # The domain's log publishing policy, written here instead of by CDK's custom resource.
        logs_policy = logs.CfnResourcePolicy(
            self,
            "LogsPolicy",
            policy_name=f"{config.prefix}-opensearch-logs",
            policy_document=stack.to_json_string(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "es.amazonaws.com"},
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": [group.log_group_arn for group in log_groups.values()],
                            "Condition": {"StringEquals": {"aws:SourceAccount": stack.account}},
                        }
                    ],
                }
            ),
        )
        zone_awareness = (
            opensearch.ZoneAwarenessConfig(enabled=True, availability_zone_count=2)
            if settings.zone_awareness
            else opensearch.ZoneAwarenessConfig(enabled=False)
        )
        self.domain = opensearch.Domain(
            self,
            "Domain",
            domain_name=self.domain_name,
            version=opensearch.EngineVersion.open_search(settings.engine_version),
            capacity=opensearch.CapacityConfig(
                data_node_instance_type=settings.instance_type,
                data_nodes=settings.data_nodes,
                master_node_instance_type=settings.dedicated_master_type,
                master_nodes=settings.dedicated_master_nodes or None,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(
                enabled=True,
                volume_size=settings.volume_gib,
                volume_type=ec2.EbsDeviceVolumeType.GP3,
            ),
            zone_awareness=zone_awareness,
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2_PFS,
            logging=opensearch.LoggingOptions(
                app_log_enabled=True,
                app_log_group=log_groups["App"],
                slow_search_log_enabled=True,
                slow_search_log_group=log_groups["SlowSearch"],
                slow_index_log_enabled=True,
                slow_index_log_group=log_groups["SlowIndex"],
            ),
            suppress_logs_resource_policy=True,
            enable_auto_software_update=True,
            enable_version_upgrade=True,
            removal_policy=removal,
        )
        self.domain.node.add_dependency(logs_policy)
        acknowledge(
            self.domain,
            "AwsSolutions-OS1",
            "Public endpoint on purpose: the functions run outside a VPC (no NAT/ENI cost or "
            "cold-start penalty). Access needs SigV4 by the listed roles; TLS 1.2, HTTPS only.",
        )
        acknowledge(
            self.domain,
            "AwsSolutions-OS3",
            "Access is restricted to IAM principals (the function roles) in the domain access "
            "policy; Lambda has no fixed source IPs to allow-list.",
        )
        if not settings.dedicated_master_nodes:
            acknowledge(
                self.domain,
                "AwsSolutions-OS4",
                "Dedicated masters are optional (context opensearch_master_nodes): a 1-2 node "
                "domain for one index does not need them; they would double the floor cost.",
            )
        if not settings.zone_awareness:
            acknowledge(
                self.domain,
                "AwsSolutions-OS7",
                "Single-node dev domain (cheapest floor). prod enables zone awareness across "
                "2 AZs (context opensearch_zone_awareness).",
            )
        cfn_domain = self.domain.node.default_child
        assert isinstance(cfn_domain, opensearch.CfnDomain)
        self._cfn_domain = cfn_domain
        self.endpoint = "https://" + self.domain.domain_endpoint
        self.target = "domain"
        self.ready = self.domain

    def _grants_of(self, level: Level) -> list[tuple[list[str], list[str]]]:
        """(actions, resource ARNs) of a level, paths expanded for this domain and alias."""
        return [
            (list(actions), [f"{self.domain_arn}/{path.format(alias=self.index)}" for path in paths])
            for actions, paths in DOMAIN_GRANTS[level]
        ]

    def _grant_identity(self, level: Level, role: iam.IRole) -> None:
        for actions, resources in self._grants_of(level):
            iam.Grant.add_to_principal(grantee=role, actions=actions, resource_arns=resources)
            for resource in resources:
                if resource.endswith("*"):
                    acknowledge_wildcard_resource(role, resource, DOMAIN_PATH_REASON[level])

    def _identity_statements(self, level: Level) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(actions=actions, resources=resources)
                for actions, resources in self._grants_of(level)]

    def _render_resource_policy(self) -> None:
        self._cfn_domain.access_policies = self._access_policy()

    def _access_policy(self) -> dict[str, Any]:
        statements = [
            {
                "Sid": f"{level.capitalize()}Access{number}",
                "Effect": "Allow",
                "Principal": {"AWS": [role.role_arn for role in roles]},
                "Action": actions,
                "Resource": resources,
            }
            for level, roles in self._grants.roles.items()
            if roles
            for number, (actions, resources) in enumerate(self._grants_of(level))
        ]
        if not statements:
            raise ValueError("the domain access policy would be empty: grant at least one role")
        return {"Version": "2012-10-17", "Statement": statements}


class ServerlessStore(VectorStore):
    """An OpenSearch Serverless VECTORSEARCH collection (NextGen by default)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig) -> None:
        super().__init__(scope, construct_id, index=config.opensearch_index)
        settings = config.serverless
        self.collection_name = f"{config.prefix}-vectors"
        collection_rule = {"ResourceType": "collection", "Resource": [f"collection/{self.collection_name}"]}
        encryption = aoss.CfnSecurityPolicy(
            self,
            "EncryptionPolicy",
            name=f"{config.prefix}-enc",
            type="encryption",
            policy=json.dumps({"Rules": [collection_rule], "AWSOwnedKey": True}),
        )
        network = aoss.CfnSecurityPolicy(
            self,
            "NetworkPolicy",
            name=f"{config.prefix}-net",
            type="network",
            policy=json.dumps([{"Rules": [collection_rule], "AllowFromPublic": True}]),
        )
        standby = "ENABLED" if settings.standby_replicas else "DISABLED"
        self.collection = aoss.CfnCollection(
            self,
            "Collection",
            name=self.collection_name,
            type="VECTORSEARCH",
            standby_replicas=standby,
            description="solar-rag chunks (k-NN + BM25)",
        )
        if settings.generation == "nextgen":
            group = aoss.CfnCollectionGroup(
                self,
                "CollectionGroup",
                name=f"{config.prefix}-group",
                generation="NEXTGEN",
                standby_replicas=standby,
                capacity_limits=aoss.CfnCollectionGroup.CapacityLimitsProperty(
                    min_indexing_capacity_in_ocu=0,
                    min_search_capacity_in_ocu=0,
                    max_indexing_capacity_in_ocu=settings.max_indexing_ocu,
                    max_search_capacity_in_ocu=settings.max_search_ocu,
                ),
            )
            self.collection.collection_group_name = group.name
            self.collection.node.add_dependency(group)
        self.collection.node.add_dependency(encryption)
        self.collection.node.add_dependency(network)
        self.data_policy = aoss.CfnAccessPolicy(
            self,
            "DataAccessPolicy",
            name=f"{config.prefix}-data",
            type="data",
            policy="[]",  # rendered by finalize() from the grants
        )
        self.data_policy.node.add_dependency(self.collection)
        self.endpoint = self.collection.attr_collection_endpoint
        self.target = config.opensearch_target
        self.ready = self.data_policy

    def _grant_identity(self, level: Level, role: iam.IRole) -> None:
        iam.Grant.add_to_principal(
            grantee=role, actions=["aoss:APIAccessAll"], resource_arns=[self.collection.attr_arn]
        )

    def _identity_statements(self, level: Level) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(actions=["aoss:APIAccessAll"],
                                    resources=[self.collection.attr_arn])]

    def _render_resource_policy(self) -> None:
        self.data_policy.policy = self._data_policy_json()

    def _data_policy_json(self) -> str:
        items = []
        for level, roles in self._grants.roles.items():
            if not roles:
                continue
            index_pattern = f"index/{self.collection_name}/{self.index}*"
            rules: list[dict[str, Any]] = []
            if AOSS_COLLECTION_PERMISSIONS[level]:
                rules.append(
                    {
                        "ResourceType": "collection",
                        "Resource": [f"collection/{self.collection_name}"],
                        "Permission": list(AOSS_COLLECTION_PERMISSIONS[level]),
                    }
                )
            rules.append(
                {
                    "ResourceType": "index",
                    "Resource": [index_pattern],
                    "Permission": list(AOSS_INDEX_PERMISSIONS[level]),
                }
            )
            items.append(
                {
                    "Description": (f"{level} access for the solar-rag functions"
                                    if level != "reindex" else "rag reindex (operator role)"),
                    "Rules": rules,
                    "Principal": [role.role_arn for role in roles],
                }
            )
        if not items:
            raise ValueError("the data access policy would be empty: grant at least one role")
        return cdk.Stack.of(self).to_json_string(items)


class IndexBootstrap(Construct):
    """Deploy-time custom resource: index, alias and search pipeline (idempotent).

    CDK's custom resource provider framework runs ``functions/opensearch_init_event`` (names
    the resource) and then polls ``functions/opensearch_init`` (one attempt at
    ``solar_rag...bootstrap.init_opensearch`` per call) every ``query_interval`` until it is
    complete, fails for good, or ``total_timeout`` passes: the waiting between attempts is the
    framework's (a Step Functions waiter), not a sleeping Lambda. Delete keeps the data. The
    resource's properties change when the index settings or the ``solar_rag`` layer change, so
    a deploy that changes either re-runs the (idempotent) bootstrap.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        store: VectorStore,
        environment: FunctionEnvironment,
        defaults: LambdaDefaults,
        bootstrap_version: str,
        dimensions: int,
    ) -> None:
        super().__init__(scope, construct_id)
        defaults = replace(defaults, snap_start=False)
        self.handler = create_function(
            self,
            "Function",
            code_name="opensearch_init",
            description="Creates the OpenSearch index, alias and search pipeline at deploy time",
            sizing=FunctionSizing(memory_mb=512, timeout_seconds=retry.OPENSEARCH_INIT_ATTEMPT_SECONDS),
            environment=environment,
            defaults=defaults,
        )
        store.grant_admin(self.handler.role)
        self.event_handler = create_function(
            self,
            "EventFunction",
            code_name="opensearch_init_event",
            description="Names the OpenSearch bootstrap resource (the work is the init function's)",
            sizing=FunctionSizing(memory_mb=128, timeout_seconds=30),
            environment=environment,
            defaults=defaults,
        )
        provider_logs = logs.LogGroup(
            self,
            "ProviderLogs",
            retention=defaults.log_retention,
            removal_policy=defaults.log_removal_policy,
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.event_handler.function,
            is_complete_handler=self.handler.function,
            query_interval=cdk.Duration.seconds(retry.OPENSEARCH_INIT_QUERY_INTERVAL_SECONDS),
            total_timeout=cdk.Duration.seconds(retry.OPENSEARCH_INIT_TOTAL_TIMEOUT_SECONDS),
            log_group=provider_logs,
        )
        acknowledge(
            self.provider,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "Role of CDK's custom-resource provider framework function (managed by CDK): only "
            "the basic logging policy.",
        )
        for function in (self.event_handler.function, self.handler.function):
            acknowledge_wildcard_resource(
                self.provider,
                f"{function.function_arn}:*",
                "CDK's provider framework may invoke any version of the bootstrap's functions.",
            )
        for child in ("framework-isComplete", "framework-onTimeout"):
            framework_function = self.provider.node.find_child(child)
            assert isinstance(framework_function, lambda_.Function)
            acknowledge_wildcard_resource(
                self.provider,
                f"{framework_function.function_arn}:*",
                "The framework's waiter state machine may invoke any version of its own two "
                "functions (managed by CDK).",
            )
        for rule in ("AwsSolutions-SF1", "AwsSolutions-SF2"):
            acknowledge(
                self.provider,
                rule,
                "The provider framework's waiter state machine (managed by CDK, which offers no "
                "X-Ray setting for it) only re-invokes the framework's isComplete function; every "
                "attempt is logged by the init function and the framework's functions in their "
                "log groups. Execution logging would add CloudWatch Logs delivery actions on "
                "Resource '*' to its role.",
            )
        self.resource = cdk.CustomResource(
            self,
            "Index",
            service_token=self.provider.service_token,
            resource_type="Custom::OpenSearchIndex",
            properties={
                "Index": store.index,
                "Target": store.target,
                "Dimensions": str(dimensions),
                "BootstrapVersion": bootstrap_version,
            },
        )
        self.resource.node.add_dependency(store.ready)
