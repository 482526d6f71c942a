"""Documents bucket → S3 event notifications → SQS queue (+ DLQ) → indexer."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.config import IngestionConfig
from infra_cdk.nag import acknowledge, acknowledge_wildcard_resource

NOTIFIED_EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
OBJECT_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
# Reserved key prefix where the indexer parks documents it could not finish within an HTTP
# request (202 "queued"); the S3 pipeline indexes them and the indexer deletes them after.
QUEUED_PREFIX = ".solar-rag/queued/"
DOCUMENT_PARSE_PREFIX = ".solar-rag/document-parse/"


def stack_instance_suffix(scope: Construct) -> str:
    """8 hex characters of this stack instance's id (``AWS::StackId`` ends in a UUID).

    Names built with it stay fixed for the stack's life and differ after a ``cdk destroy``
    and redeploy, so a retained bucket or domain never blocks the new one.
    """
    stack_uuid = cdk.Fn.select(2, cdk.Fn.split("/", cdk.Aws.STACK_ID))
    return cdk.Fn.select(0, cdk.Fn.split("-", stack_uuid))


class Ingestion(Construct):
    """The bucket's notifications are set on the bucket resource itself (no custom resource).

    CDK's ``add_event_notification`` installs a helper Lambda whose role may call
    ``s3:PutBucketNotification`` on every bucket (``Resource: *``). Here the bucket gets a
    name computed from the stack (prefix, account, stack instance id), the queue policy
    names that bucket ARN without referencing the bucket resource, and the bucket depends on
    the queue policy: CloudFormation can then validate the destination while creating the
    bucket, with no circular dependency.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        config: IngestionConfig,
        indexer_timeout: cdk.Duration,
        cors_origins: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.config = config

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=cdk.Duration.days(90),
                    noncurrent_version_expiration=cdk.Duration.days(7),
                )
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server access log bucket; logging it to itself would loop.",
        )

        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS guidance for Lambda event sources: 6 × function timeout + batching window.
            visibility_timeout=cdk.Duration.seconds(
                6 * indexer_timeout.to_seconds() + config.max_batching_window_seconds
            ),
            retention_period=cdk.Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=config.max_receive_count, queue=self.dead_letters
            ),
        )

        self.bucket_name = cdk.Fn.join(
            "-", [f"{prefix}-docs", stack.account, stack_instance_suffix(self)]
        )
        bucket_arn = stack.format_arn(service="s3", region="", account="", resource=self.bucket_name)
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowDocumentsBucketNotifications",
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={
                    "ArnEquals": {"aws:SourceArn": bucket_arn},
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )

        self.bucket = s3.Bucket(
            self,
            "Documents",
            bucket_name=self.bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="documents/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=cdk.Duration.days(config.noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(7),
                    expired_object_delete_marker=True,
                ),
                # Document Parse request ids (solar_rag.adapters.parse_requests): Upstage
                # keeps results 30 days, a memo older than that is useless.
                s3.LifecycleRule(
                    id="expire-document-parse-requests",
                    prefix=DOCUMENT_PARSE_PREFIX,
                    expiration=cdk.Duration.days(31),
                ),
            ],
            removal_policy=cdk.RemovalPolicy.RETAIN,
            # Browsers upload large files straight to S3 with a presigned PUT (POST /v1/uploads).
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT],
                    allowed_origins=list(cors_origins),
                    allowed_headers=["content-type", "content-length"],
                    max_age=3600,
                )
            ]
            if cors_origins
            else None,
        )
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            queue_configurations=[
                s3.CfnBucket.QueueConfigurationProperty(event=event, queue=self.queue.queue_arn)
                for event in NOTIFIED_EVENTS
            ]
        )
        queue_policy = self.queue.node.find_child("Policy")
        self.bucket.node.add_dependency(queue_policy)

    def grant_object_read(self, role: iam.IRole) -> None:
        """GetObject(+Version) on the objects; ListBucket so a missing key is 404, not 403."""
        objects = self.bucket.arn_for_objects("*")
        iam.Grant.add_to_principal(grantee=role, actions=list(OBJECT_READ_ACTIONS), resource_arns=[objects])
        acknowledge_wildcard_resource(
            role,
            objects,
            "Object keys are document ids chosen by uploaders: the indexer reads any object of "
            "this one bucket and presigns uploads (PutObject) to any key of it; no deletes.",
        )
        iam.Grant.add_to_principal(
            grantee=role, actions=["s3:ListBucket"], resource_arns=[self.bucket.bucket_arn]
        )

    def grant_uploads(self, role: iam.IRole) -> None:
        """PutObject on any key (presigned uploads: the key is the document id chosen by the
        caller; queued documents), DeleteObject only under the reserved queued prefix."""
        objects = self.bucket.arn_for_objects("*")
        iam.Grant.add_to_principal(grantee=role, actions=["s3:PutObject"], resource_arns=[objects])
        queued = self.bucket.arn_for_objects(f"{QUEUED_PREFIX}*")
        iam.Grant.add_to_principal(grantee=role, actions=["s3:DeleteObject"], resource_arns=[queued])
        acknowledge_wildcard_resource(
            role,
            queued,
            "The indexer deletes the documents it queued once indexed: only under the reserved "
            f"{QUEUED_PREFIX} prefix of this one bucket.",
        )

    def connect(self, indexer: lambda_.IFunction) -> event_sources.SqsEventSource:
        """Make the indexer consume the queue (the event source grants the SQS permissions)."""
        source = event_sources.SqsEventSource(
            self.queue,
            batch_size=self.config.batch_size,
            max_batching_window=cdk.Duration.seconds(self.config.max_batching_window_seconds),
            max_concurrency=self.config.max_concurrency,
            report_batch_item_failures=True,
        )
        indexer.add_event_source(source)
        return source
