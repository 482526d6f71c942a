"""The account-level API Gateway logging role, in its own stack (once per account and region).

API Gateway writes execution and access logs through one role set in the account's API
Gateway settings (``AWS::ApiGateway::Account``), shared by every REST API of the region.
Created inside each stage stack (CDK's ``cloudWatchRole``), the last stage destroyed would
delete the role the other stages' logs use. Here it is created once, retained when the stack
is deleted, and every stage stack depends on this stack, so ``cdk deploy SolarRag-<stage>``
deploys it first when it is missing (re-deploying it is a no-op).
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra_cdk.nag import acknowledge

STACK_NAME = "SolarRag-ApiGatewayLogging"


class ApiGatewayAccountStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str = STACK_NAME, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description="solar-rag: API Gateway's account-level CloudWatch Logs role (shared)",
            **kwargs,
        )
        self.role = iam.Role(
            self,
            "CloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway writes execution and access logs of every REST API here",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        self.role.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        acknowledge(
            self.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level API Gateway logging role needs exactly this AWS-managed policy "
            "(CloudWatch Logs for execution and access logs of every API of the region).",
        )
        account = apigw.CfnAccount(self, "Account", cloud_watch_role_arn=self.role.role_arn)
        # Deleting the stack leaves the account setting (and the retained role) in place.
        account.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        cdk.CfnOutput(self, "CloudWatchRoleArn", value=self.role.role_arn)
