"""The DynamoDB document registry (status, content hash, chunk count, lock items)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

# What the registry adapter calls. Listing uses Scan (small table, paginated by the API);
# no GSI: every other access is by the partition key.
READ_WRITE_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
)


class DocumentRegistry(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name="document_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute="expires_at",
            removal_policy=removal_policy,
        )

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def grant_read_write(self, role: iam.IRole) -> None:
        iam.Grant.add_to_principal(
            grantee=role, actions=list(READ_WRITE_ACTIONS), resource_arns=[self.table.table_arn]
        )
