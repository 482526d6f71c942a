"""Lambda entry point: SQS batches of S3 notifications, and /v1/documents… (+ /agent/knowledge)."""

from solar_rag.lambda_edge.runtime import indexer_function

handler = indexer_function(routers=("health", "documents", "files"))
