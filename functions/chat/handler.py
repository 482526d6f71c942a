"""Lambda entry point: POST /v1/chat and GET /v1/health (API Gateway REST proxy events).

Builds no vector store, registry or S3 client: chat needs the Upstage key and the model only.
"""

from solar_rag.lambda_runtime import http_function

handler = http_function("chat", routers=("health", "chat"))
