"""Lambda entry point: POST /v1/query, /v1/search, /v1/embeddings and /agent/query."""

from solar_rag.lambda_edge.runtime import http_function

handler = http_function("query", routers=("health", "query"))
