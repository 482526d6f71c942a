"""`rag reindex` from an operator's role (context ``reindex_principal_arn``).

One customer-managed policy, attached to the role, holds exactly what the command does to
this stack: read the documents (their bucket), read and write the document registry, read
the Upstage key, keep its progress record under the bucket's reserved
``.solar-rag/reindex/`` prefix, and the OpenSearch data access of the ``reindex`` level
(``vector_store.DOMAIN_GRANTS`` / ``AOSS_INDEX_PERMISSIONS``), which the domain access
policy (or the Serverless data access policy) grants the role on its side too.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra_cdk.config import DeployConfig
from infra_cdk.constructs.ingestion import OBJECT_READ_ACTIONS, Ingestion
from infra_cdk.constructs.registry import READ_WRITE_ACTIONS, DocumentRegistry
from infra_cdk.constructs.secrets import UpstageSecret
from infra_cdk.constructs.vector_store import DOMAIN_PATH_REASON, VectorStore
from infra_cdk.nag import acknowledge_wildcard_resource

RECORD_PREFIX = ".solar-rag/reindex/"
"""Where `rag reindex` keeps its progress record in the documents bucket (the indexer
ignores the reserved ``.solar-rag/`` prefix)."""
SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
RECORD_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")


class ReindexAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        principal_arn: str,
        prefix: str,
        store: VectorStore,
        registry: DocumentRegistry,
        ingestion: Ingestion,
        secret: UpstageSecret,
    ) -> None:
        super().__init__(scope, construct_id)
        # Immutable: nothing but this policy is added to a role the stack does not own.
        self.role = iam.Role.from_role_arn(self, "Operator", principal_arn, mutable=False)
        bucket = ingestion.bucket
        documents = bucket.arn_for_objects("*")
        record = bucket.arn_for_objects(f"{RECORD_PREFIX}*")
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=f"{prefix}-reindex-operator",
            description="rag reindex: read the documents, the registry, the Upstage key; "
            "write the progress record and the next index version",
            statements=[
                iam.PolicyStatement(actions=list(OBJECT_READ_ACTIONS), resources=[documents]),
                iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn]),
                iam.PolicyStatement(actions=list(RECORD_ACTIONS), resources=[record]),
                iam.PolicyStatement(actions=list(READ_WRITE_ACTIONS),
                                    resources=[registry.table.table_arn]),
                iam.PolicyStatement(actions=list(SECRET_ACTIONS),
                                    resources=[secret.secret.secret_arn]),
            ],
        )
        # ``roles=`` does not render for an immutable imported role: attach by name.
        cfn_policy = self.policy.node.default_child
        assert isinstance(cfn_policy, iam.CfnManagedPolicy)
        cfn_policy.roles = [self.role.role_name]
        wildcards = store.grant_reindex(self.role, self.policy)
        acknowledge_wildcard_resource(
            self.policy, documents,
            "Object keys are document ids chosen by uploaders: rag reindex reads any object "
            "of this one bucket again (read only).")
        acknowledge_wildcard_resource(
            self.policy, record,
            f"The run's progress record: only under the reserved {RECORD_PREFIX} prefix of "
            "this one bucket.")
        for resource in wildcards:
            acknowledge_wildcard_resource(self.policy, resource, DOMAIN_PATH_REASON["reindex"])
        cdk.CfnOutput(
            cdk.Stack.of(self), "ReindexPolicyArn", value=self.policy.managed_policy_arn,
            description="Managed policy attached to the reindex_principal_arn role",
        )


def reindex_environment(scope: Construct, config: DeployConfig, *, store: VectorStore,
                        bucket: str, table: str, secret: str) -> str:
    """``NAME=value`` pairs (space separated, no secret) `rag reindex` needs for this stack;
    the embedding settings are the deployed ones (export the new ones after it)."""
    upstage = config.upstage
    pairs: list[tuple[str, str]] = [
        ("AWS_REGION", cdk.Stack.of(scope).region),
        ("VECTOR_STORE", "opensearch"),
        ("OPENSEARCH_ENDPOINT", store.endpoint),
        ("OPENSEARCH_TARGET", store.target),
        ("OPENSEARCH_INDEX", config.opensearch_index),
        ("DOCUMENTS_BUCKET", bucket),
        ("DOCUMENTS_TABLE", table),
        ("UPSTAGE_SECRET_ID", secret),
        ("UPSTAGE_BASE_URL", upstage.base_url),
        ("UPSTAGE_EMBEDDING_PASSAGE_MODEL", upstage.embedding_passage_model),
        ("UPSTAGE_EMBEDDING_QUERY_MODEL", upstage.embedding_query_model),
        ("EMBEDDING_DIMENSIONS", str(upstage.embedding_dimensions)),
        ("MAX_OBJECT_BYTES", str(config.ingestion.max_object_bytes)),
    ]
    parts: list[str] = []
    for name, value in pairs:
        parts += [f" {name}=" if parts else f"{name}=", value]
    return cdk.Fn.join("", parts)
