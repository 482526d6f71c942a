"""Lambda entry point: GET /v1/health and the playground page (API Gateway REST proxy events);
POST /v1/chat is routed to the streaming function when deployed (this router stays for tests).

Builds no vector store, registry or S3 client: chat needs the Upstage key and the model only.
"""

from solar_rag.lambda_edge.runtime import http_function

handler = http_function("chat", routers=("health", "chat", "playground"))
