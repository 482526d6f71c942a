"""The solar-rag stack: a thin composition of one construct per capability."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra_cdk.config import DeployConfig, FunctionSizing
from infra_cdk.constructs.api import RagApi
from infra_cdk.constructs.functions import (
    FunctionEnvironment,
    LambdaDefaults,
    RagFunction,
    create_function,
    retention,
)
from infra_cdk.constructs.ingestion import Ingestion
from infra_cdk.constructs.key_authorizer import KeyAuthorizer
from infra_cdk.constructs.layers import SharedLayers
from infra_cdk.constructs.monitoring import Monitoring
from infra_cdk.constructs.registry import DocumentRegistry
from infra_cdk.constructs.reindex_access import ReindexAccess, reindex_environment
from infra_cdk.constructs.secrets import UpstageSecret
from infra_cdk.constructs.streaming import (
    STREAM_HANDLER,
    STREAM_TIMEOUT_SECONDS,
    web_adapter_environment,
    web_adapter_layer,
)
from infra_cdk.constructs.vector_store import DomainStore, IndexBootstrap, ServerlessStore, VectorStore
from infra_cdk.quota import document_parse_env, upstage_shares

METRICS_NAMESPACE = "SolarRag"


class SolarRagStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        data_removal = cdk.RemovalPolicy.RETAIN if config.retain_data else cdk.RemovalPolicy.DESTROY
        log_removal = cdk.RemovalPolicy.RETAIN if config.retain_data else cdk.RemovalPolicy.DESTROY

        self.layers = SharedLayers(
            self, "Layers", removal_policy=cdk.RemovalPolicy.RETAIN, architecture=config.architecture
        )
        defaults = LambdaDefaults(
            layers=self.layers.all,
            architecture=self.layers.architecture,
            log_retention=retention(config.log_retention_days),
            log_removal_policy=log_removal,
            snap_start=config.snap_start,
        )
        self.secret = UpstageSecret(self, "UpstageSecret", prefix=config.prefix)
        self.registry = DocumentRegistry(self, "Registry", removal_policy=data_removal)
        self.ingestion = Ingestion(
            self,
            "Ingestion",
            prefix=config.prefix,
            config=config.ingestion,
            indexer_timeout=cdk.Duration.seconds(config.indexer.timeout_seconds),
            cors_origins=config.api.cors_origins,
        )
        self.vector_store: VectorStore = (
            DomainStore(self, "VectorStore", config=config, removal=data_removal)
            if config.vector_store == "domain"
            else ServerlessStore(self, "VectorStore", config=config)
        )

        shares = upstage_shares(config)
        cors = {"CORS_ALLOWED_ORIGINS": ",".join(config.api.cors_origins)} if config.api.cors_origins else {}

        def environment(service: str, *, http: bool = True, **extra: Any) -> FunctionEnvironment:
            """``http``: served through API Gateway (CORS); a quota share if the function embeds."""
            share = shares.get(service)
            variables = {**(cors if http else {}), **(share.env() if share else {}),
                         **extra.pop("extra", {})}
            return FunctionEnvironment(
                service_name=f"solar-rag-{service}",
                metrics_namespace=METRICS_NAMESPACE,
                log_level=config.log_level,
                upstage=config.upstage,
                opensearch_endpoint=self.vector_store.endpoint,
                opensearch_target=self.vector_store.target,
                opensearch_index=config.opensearch_index,
                extra=variables,
                **extra,
            )

        secret_id = self.secret.secret_name
        self.chat = create_function(
            self,
            "ChatFunction",
            code_name="chat",
            description="POST /v1/chat, GET /v1/health",
            sizing=config.chat,
            environment=environment("chat", upstage_secret_id=secret_id),
            defaults=defaults,
        )
        self.query = create_function(
            self,
            "QueryFunction",
            code_name="query",
            description="POST /v1/query, /v1/search, /v1/embeddings, /agent/query",
            sizing=config.query,
            environment=environment("query", upstage_secret_id=secret_id),
            defaults=defaults,
        )
        # Streams answers (API Gateway response streaming through the Lambda Web Adapter).
        stream_timeout = STREAM_TIMEOUT_SECONDS
        self.stream = create_function(
            self,
            "StreamFunction",
            code_name="stream",
            description="POST /v1/query, /v1/chat, /v1/chat/completions, GET /v1/models (streamed)",
            sizing=FunctionSizing(memory_mb=config.query.memory_mb, timeout_seconds=stream_timeout,
                                  max_concurrency=config.query.max_concurrency),
            environment=environment("stream", upstage_secret_id=secret_id,
                                    extra=web_adapter_environment(stream_timeout)),
            defaults=defaults,
            handler=STREAM_HANDLER,
            extra_layers=[web_adapter_layer(self, "WebAdapterLayer", self.layers.architecture)],
        )
        self.indexer = create_function(
            self,
            "IndexerFunction",
            code_name="indexer",
            description="/v1/documents, /v1/uploads, /agent/knowledge and S3 events from the ingestion queue",
            sizing=config.indexer,
            environment=environment(
                "indexer",
                upstage_secret_id=secret_id,
                documents_table=self.registry.table_name,
                documents_bucket=self.ingestion.bucket_name,
                max_object_bytes=config.ingestion.max_object_bytes,
                extra=document_parse_env(config),
            ),
            defaults=defaults,
        )
        for fn in (self.chat, self.query, self.stream, self.indexer):
            self.secret.grant_read(fn.role)
        self.vector_store.grant_read(self.query.role)
        self.vector_store.grant_read(self.stream.role)
        self.vector_store.grant_write(self.indexer.role)
        self.registry.grant_read_write(self.indexer.role)
        self.ingestion.grant_object_read(self.indexer.role)
        self.ingestion.grant_uploads(self.indexer.role)
        self.ingestion.connect(self.indexer.target)

        self.bootstrap = IndexBootstrap(
            self,
            "OpenSearchInit",
            store=self.vector_store,
            environment=environment("opensearch-init", http=False),
            defaults=defaults,
            bootstrap_version=self.layers.shared_hash[:16],
            dimensions=config.upstage.embedding_dimensions,
        )
        self.reindex_access = (
            ReindexAccess(self, "ReindexAccess", principal_arn=config.reindex_principal_arn,
                          prefix=config.prefix, store=self.vector_store, registry=self.registry,
                          ingestion=self.ingestion, secret=self.secret)
            if config.reindex_principal_arn else None
        )
        self.vector_store.finalize()  # every grant is made: render the resource-side policy

        self.key_authorizer = KeyAuthorizer(
            self,
            "KeyAuthorizer",
            defaults=defaults,
            environment=FunctionEnvironment(
                service_name="solar-rag-key-authorizer",
                metrics_namespace=METRICS_NAMESPACE,
                log_level=config.log_level,
            ),
        )
        self.api = RagApi(
            self,
            "Api",
            name=f"{config.prefix}-api",
            authorizer=self.key_authorizer.authorizer,
            stage_name=config.stage,
            targets={
                "chat": self.chat.target,
                "query": self.query.target,
                "indexer": self.indexer.target,
                "stream": self.stream.target,
            },
            config=config.api,
            log_retention=retention(config.log_retention_days),
            log_removal_policy=log_removal,
        )
        functions: dict[str, RagFunction] = {
            "Chat": self.chat,
            "Query": self.query,
            "Indexer": self.indexer,
            "Stream": self.stream,
        }
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            prefix=config.prefix,
            functions={name: fn.function for name, fn in functions.items()},
            stage=self.api.rest_api.deployment_stage,
            dead_letters=self.ingestion.dead_letters,
            queue=self.ingestion.queue,
            latency_p95_ms=config.api_latency_p95_ms,
            alarm_email=config.alarm_email,
            alarm_topic_arn=config.alarm_topic_arn,
        )

        outputs = {
            "ApiUrl": (self.api.url, "Base URL of the REST API (stage included)"),
            "ApiKeyId": (
                self.api.api_key.key_id,
                "aws apigateway get-api-key --include-value --api-key <id>",
            ),
            "DocumentsBucketName": (self.ingestion.bucket_name, "Upload documents here"),
            "DocumentsTableName": (self.registry.table_name, "Document registry"),
            "UpstageSecretName": (
                self.secret.secret_name,
                "aws secretsmanager put-secret-value --secret-id <name> --secret-string <key>",
            ),
            "OpenSearchEndpoint": (self.vector_store.endpoint, "OpenSearch endpoint (SigV4)"),
            "DeadLetterQueueUrl": (self.ingestion.dead_letters.queue_url, "Failed S3 events"),
            "ReindexEnvironment": (
                reindex_environment(self, config, store=self.vector_store,
                                    bucket=self.ingestion.bucket_name,
                                    table=self.registry.table_name, secret=secret_id),
                "export $(this value) before `rag reindex` (docs/deploy.md, Re-embedding)",
            ),
        }
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)

        for key, value in config.tags.items():
            cdk.Tags.of(self).add(key, value)
