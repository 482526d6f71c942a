"""The streaming function's ASGI app: POST /v1/query, /v1/chat, /v1/chat/completions and
GET /v1/models, answered as they are written.

Python's managed Lambda runtime cannot stream a response, so this function runs differently
from the others: its handler is ``run.sh``, which the AWS Lambda Web Adapter layer
(``AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap``) starts as a web server (uvicorn serving ``app``
below); the adapter turns each API Gateway event into an HTTP request to it and, with
``AWS_LWA_INVOKE_MODE=response_stream``, streams the response back as it is written.
Importing this module builds the container and warms the routers' services (at init, and
captured by SnapStart).
"""

from solar_rag.lambda_edge.web import create_streaming_app

app = create_streaming_app(routers=("health", "query", "chat", "openai"))
