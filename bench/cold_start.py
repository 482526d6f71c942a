"""Cold start of each Lambda handler: fresh process to first handled realistic event.

For each function (chat, query, indexer) a new Python process imports
``functions/<name>/handler.py`` and handles one realistic event (API Gateway REST for chat and
query, an SQS batch wrapping an S3 notification for the indexer), against local fakes: the
fake Upstage server, the OpenSearch stub and a moto server (Secrets Manager, S3, DynamoDB)
reached through ``AWS_ENDPOINT_URL``. "scoped" is the project's handler: it imports at init
only what its function uses (``lambda_runtime.preload``) and builds clients on the first
request. "eager" is the baseline that imports everything the project ships (all adapters,
routers, parsers, SDKs) at module level before the handler, as one do-everything module would.

    .venv/bin/python bench/cold_start.py [--runs 10]

Reported: median over ``--runs`` fresh processes (after one discarded warm-up run that
writes bytecode to a temporary ``PYTHONPYCACHEPREFIX``, as a Lambda asset ships it
precompiled; ``--no-bytecode`` measures without) of the total (process spawn to response
ready), of importing the handler module, and of the first invocation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "BENCH_RESULT "
SECRET_ID = "solar-rag/upstage-api-key"
UPSTAGE_KEY = "up_bench_0123456789abcdef0123"
TABLE = "solar-rag-documents"
BUCKET = "rag-documents-bench"
FUNCTIONS = ("chat", "query", "indexer")
MODES = ("scoped", "eager")

EAGER_MODULES = (
    "fastapi", "mangum", "openai", "opensearchpy", "boto3", "botocore", "pydantic_settings", "pypdf",
    "aws_lambda_powertools.logging", "aws_lambda_powertools.metrics", "aws_lambda_powertools.tracing",
    "aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.parameters",
    "solar_rag.api.app", "solar_rag.api.routers.health", "solar_rag.api.routers.chat",
    "solar_rag.api.routers.query", "solar_rag.api.routers.documents",
    "solar_rag.adapters.upstage", "solar_rag.adapters.opensearch", "solar_rag.adapters.s3_source",
    "solar_rag.adapters.dynamodb_registry", "solar_rag.adapters.secrets",
    "solar_rag.services.indexing", "solar_rag.services.query", "solar_rag.services.chat",
    "solar_rag.services.s3_ingestion", "solar_rag.parsing.files", "solar_rag.parsing.parsers",
    "solar_rag.text.chunking", "solar_rag.parsing.pdf", "solar_rag.parsing.docx",
)


class _Context:
    function_name = "solar-rag-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    aws_request_id = "bench-request"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:solar-rag-bench"
    log_group_name = "/aws/lambda/solar-rag-bench"
    log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def child(function: str, mode: str, event_file: str) -> None:
    """Runs in the fresh process: import, handle one event, report timings."""
    started = time.perf_counter()
    if mode == "eager":
        for name in EAGER_MODULES:
            importlib.import_module(name)
    spec = importlib.util.spec_from_file_location("handler", ROOT / "functions" / function / "handler.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    imported = time.perf_counter()
    event = json.loads(Path(event_file).read_text())
    response = module.handler(event, _Context())
    done = time.perf_counter()
    ok = response.get("statusCode") == 200 or response.get("batchItemFailures") == []
    print(RESULT_PREFIX + json.dumps({
        "ok": ok, "response": str(response)[:300], "wall_done": time.time(),
        "import_ms": (imported - started) * 1000, "invoke_ms": (done - imported) * 1000,
    }), flush=True)


# --- parent ------------------------------------------------------------------------------------------

def _aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client(  # type: ignore[call-overload]
        service, region_name="us-east-1", endpoint_url=endpoint,
        aws_access_key_id="bench", aws_secret_access_key="bench")


def _fixtures() -> tuple[dict[str, str], Any]:
    """Start the fakes; return the children's environment and a stop function."""
    sys.path.insert(0, str(ROOT))
    import logging

    from moto.server import ThreadedMotoServer
    from solar_rag.adapters.opensearch import init_opensearch
    from solar_rag.settings import Settings

    from tests.fakes.opensearch_stub import OpenSearchStub
    from tests.fakes.upstage_server import FakeUpstage

    fake = FakeUpstage(api_key=UPSTAGE_KEY, dimensions=256).start()
    stub = OpenSearchStub("domain")
    stub.validate_requests = False  # the spec check is the tests' job, not a cost to measure
    stub.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    _aws_client("secretsmanager", endpoint).create_secret(Name=SECRET_ID, SecretString=UPSTAGE_KEY)
    _aws_client("dynamodb", endpoint).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "document_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "document_id", "AttributeType": "S"}])
    _aws_client("s3", endpoint).create_bucket(Bucket=BUCKET)
    init_opensearch(Settings(vector_store="opensearch", opensearch_url=stub.url, embedding_dimensions=256))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "UPSTAGE_", "OPENSEARCH_"))}
    env.update({
        "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "UPSTAGE_SECRET_ID": SECRET_ID, "UPSTAGE_BASE_URL": fake.base_url, "EMBEDDING_DIMENSIONS": "256",
        "VECTOR_STORE": "opensearch", "OPENSEARCH_URL": stub.url,
        "DOCUMENTS_TABLE": TABLE, "DOCUMENTS_BUCKET": BUCKET,
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "SolarRagBench",
        "POWERTOOLS_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
    })

    def stop() -> None:
        moto.stop()
        stub.stop()
        fake.stop()

    return env, stop


def _events(env: dict[str, str], runs: int, workdir: Path) -> dict[str, list[Path]]:
    """One event file per run (the indexer gets a new object each time: a full index path)."""
    from tests.fakes import events

    s3 = _aws_client("s3", env["AWS_ENDPOINT_URL"])
    text = ("# Solar RAG\n\nThe Aurora widget is assembled in Busan and ships with a cobalt casing. "
            + "It is serviced every spring. " * 40)
    files: dict[str, list[Path]] = {name: [] for name in FUNCTIONS}
    for run in range(2 * (runs + 1)):
        chat = events.api_event("POST", "/v1/chat", body={"messages": [{"role": "user", "content": "Hi"}]})
        query = events.api_event("POST", "/v1/query", body={"query": "Where is the Aurora widget assembled?"})
        key = f"bench/run-{run}.md"
        s3.put_object(Bucket=BUCKET, Key=key, Body=text.replace("Busan", f"Busan (run {run})").encode())
        indexer = events.sqs_event(events.s3_notification(
            events.created(key, bucket=BUCKET, size=len(text), sequencer=f"{run + 1:018X}")))
        for name, event in (("chat", chat), ("query", query), ("indexer", indexer)):
            path = workdir / f"{name}-{run}.json"
            path.write_text(json.dumps(event))
            files[name].append(path)
    return files


def _run_once(function: str, mode: str, event_file: Path, env: dict[str, str]) -> dict[str, float]:
    return run_child([str(Path(__file__).resolve()), "--child", function, "--mode", mode,
                      "--event", str(event_file)], env, label=f"{function}/{mode}")


def run_child(argv: list[str], env: dict[str, str], *, label: str) -> dict[str, float]:
    """Spawn a fresh Python on ``argv`` and read its result line: total, import, invoke ms."""
    spawned = time.time()
    result = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{label} failed:\n{result.stderr[-2000:]}")
    report = json.loads(lines[-1][len(RESULT_PREFIX):])
    if not report["ok"]:
        raise RuntimeError(f"{label} answered badly: {report['response']}")
    return {"total_ms": (report["wall_done"] - spawned) * 1000, "import_ms": report["import_ms"],
            "invoke_ms": report["invoke_ms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--child", choices=FUNCTIONS)
    parser.add_argument("--mode", choices=MODES, default="scoped")
    parser.add_argument("--event")
    parser.add_argument("--no-bytecode", action="store_true",
                        help="never cache bytecode (an asset without .pyc on a read-only /var/task)")
    parser.add_argument("--functions", default="indexer,chat,query",
                        help="comma-separated subset, in this order (the indexer first feeds the query)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.mode, args.event)
        return
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    env, stop = _fixtures()
    rows: list[tuple[str, str, list[dict[str, float]]]] = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            files = _events(env, args.runs, Path(workdir))
            if args.no_bytecode:
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            else:  # the warm-up run writes .pyc outside the repository and the venv
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env["PYTHONPYCACHEPREFIX"] = str(Path(workdir) / "pycache")
            # the indexer runs first so that the query function finds documents
            for function in [f for f in args.functions.split(",") if f in FUNCTIONS]:
                paths = {mode: files[function][offset * (args.runs + 1):(offset + 1) * (args.runs + 1)]
                         for offset, mode in enumerate(MODES)}
                for mode in MODES:  # warm-up: bytecode caches, first requests to the fakes
                    _run_once(function, mode, paths[mode][0], env)
                samples: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
                for run in range(1, args.runs + 1):
                    # interleaved, alternating order: load drift on a shared machine hits both
                    for mode in (MODES if run % 2 else MODES[::-1]):
                        samples[mode].append(_run_once(function, mode, paths[mode][run], env))
                rows.extend((function, mode, samples[mode]) for mode in MODES)
                print(f"  measured {function} ({args.runs} runs per mode)", file=sys.stderr)
    finally:
        stop()
    bytecode = "no bytecode cache" if args.no_bytecode else "bytecode cached"
    print(f"\nCold start, median of {args.runs} fresh processes (Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs, {bytecode}; fakes on 127.0.0.1)\n")
    header = (f"{'function':<9} {'imports':<7} {'total ms':>9} {'import ms':>10} {'1st call ms':>12} "
              f"{'min..max total':>16}")
    print(header)
    print("-" * len(header))
    baseline: dict[str, float] = {}
    for function, mode, measured in rows:
        totals = [s["total_ms"] for s in measured]
        median_total = statistics.median(totals)
        if mode == "eager":
            baseline[function] = median_total
        print(f"{function:<9} {mode:<7} {median_total:>9.0f} "
              f"{statistics.median(s['import_ms'] for s in measured):>10.0f} "
              f"{statistics.median(s['invoke_ms'] for s in measured):>12.0f} "
              f"{min(totals):>7.0f}..{max(totals):<7.0f}")
    print()
    for function, mode, measured in rows:
        if mode == "scoped" and function in baseline:
            scoped = statistics.median(s["total_ms"] for s in measured)
            print(f"{function}: importing only its own modules saves {baseline[function] - scoped:+.0f} ms "
                  f"({scoped / baseline[function]:.0%} of the eager cold start)")


if __name__ == "__main__":
    main()
