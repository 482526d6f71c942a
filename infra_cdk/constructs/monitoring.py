"""Alarms (DLQ depth, function errors/throttles, API 5XX and p95 latency) and a dashboard."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

FIVE_MINUTES = cdk.Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        functions: Mapping[str, lambda_.IFunction],
        stage: apigw.Stage,
        dead_letters: sqs.IQueue,
        queue: sqs.IQueue,
        latency_p95_ms: int,
        alarm_email: str | None,
        alarm_topic_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.prefix = prefix
        self.topic: sns.ITopic | None = None
        if alarm_topic_arn:
            self.topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)
        elif alarm_email:
            topic = self._alarm_topic(prefix)
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
            self.topic = topic

        self.alarms: list[cloudwatch.Alarm] = []
        dlq_depth = dead_letters.metric_approximate_number_of_messages_visible(
            period=cdk.Duration.minutes(1), statistic="Maximum"
        )
        self._alarm(
            "DeadLetters",
            dlq_depth,
            threshold=0,
            description="Documents failed indexing after all retries (see the DLQ and registry)",
        )
        dashboard_rows: list[list[cloudwatch.IWidget]] = []
        for name, function in functions.items():
            errors = function.metric_errors(period=FIVE_MINUTES, statistic="Sum")
            throttles = function.metric_throttles(period=FIVE_MINUTES, statistic="Sum")
            self._alarm(f"{name}Errors", errors, threshold=0, description=f"{name}: errors")
            self._alarm(f"{name}Throttles", throttles, threshold=0, description=f"{name}: throttles")
            dashboard_rows.append(
                [
                    cloudwatch.GraphWidget(
                        title=f"{name}: invocations / errors / throttles",
                        left=[
                            function.metric_invocations(period=FIVE_MINUTES, statistic="Sum"),
                            errors,
                            throttles,
                        ],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title=f"{name}: duration p50 / p95",
                        left=[
                            function.metric_duration(period=FIVE_MINUTES, statistic="p50"),
                            function.metric_duration(period=FIVE_MINUTES, statistic="p95"),
                        ],
                        width=12,
                    ),
                ]
            )

        server_errors = stage.metric_server_error(period=FIVE_MINUTES, statistic="Sum")
        latency = stage.metric_latency(period=FIVE_MINUTES, statistic="p95")
        self._alarm("Api5xx", server_errors, threshold=0, description="API answered 5XX")
        self._alarm(
            "ApiLatencyP95",
            latency,
            threshold=latency_p95_ms,
            evaluation_periods=3,
            description=f"API p95 latency above {latency_p95_ms} ms for 15 minutes",
        )

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{prefix}-overview", default_interval=cdk.Duration.hours(6)
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API: requests, 4XX, 5XX",
                left=[
                    stage.metric_count(period=FIVE_MINUTES, statistic="Sum"),
                    stage.metric_client_error(period=FIVE_MINUTES, statistic="Sum"),
                    server_errors,
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency p50 / p95",
                left=[stage.metric_latency(period=FIVE_MINUTES, statistic="p50"), latency],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingestion queue: visible / oldest age (s)",
                left=[queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES)],
                right=[queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES)],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=12),
        )
        for row in dashboard_rows:
            self.dashboard.add_widgets(*row)

    def _alarm_topic(self, prefix: str) -> sns.Topic:
        """An encrypted topic CloudWatch alarms of this account can publish to.

        CloudWatch cannot use the AWS-managed ``alias/aws/sns`` key (its policy cannot grant
        the service), so the topic gets a customer-managed key that allows CloudWatch; and
        ``enforce_ssl`` leaves a deny-only topic policy, so CloudWatch is allowed explicitly,
        for this account's alarms of this stage only.
        """
        stack = cdk.Stack.of(self)
        from_our_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": self._alarm_arn_pattern()},
        }
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"{prefix}: encrypts the alarm topic; CloudWatch alarms may use it",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=from_our_alarms,
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{prefix} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=from_our_alarms,
            )
        )
        return topic

    def _alarm_arn_pattern(self) -> str:
        stack = cdk.Stack.of(self)
        return f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:{self.prefix}-*"

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self.prefix}-{construct_id}",  # matched by the topic's SourceArn
            metric=metric,
            alarm_description=description,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.topic is not None:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm
