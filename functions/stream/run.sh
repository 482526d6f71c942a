#!/bin/bash
# Started by the Lambda Web Adapter's wrapper (/opt/bootstrap) as the function's "handler":
# uvicorn serves handler:app on the port the adapter forwards to (AWS_LWA_PORT). `python` as in
# LWA's own FastAPI zip example for the python3.12 runtime.
set -euo pipefail
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT:-/var/task}${PYTHONPATH:+:$PYTHONPATH}"
exec python -m uvicorn handler:app --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
  --app-dir "${LAMBDA_TASK_ROOT:-/var/task}" --no-access-log --log-level warning \
  --timeout-keep-alive 900
