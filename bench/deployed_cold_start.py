"""Cold start of each function as deployed: synthesized assets, bare Python 3.12 runtime.

Uses the deployment tier's harness (``tests/deployment``): every run is a fresh execution
environment (new process: the handler module imported at init, then the first event). Two
variants, interleaved run by run so that machine load hits both alike:

- ``shipped``: the code asset and layers as synthesized;
- ``+xray tracer``: the same plus aws-xray-sdk (locked version) as an extra layer and a
  Powertools ``Tracer`` created just before the first event, as the functions did until
  2026-12-06: what shipping the X-Ray SDK would cost.

    .venv/bin/python -m bench.deployed_cold_start [--runs 7]

Prints a Markdown table (medians). ``bench.run_all`` measures the shipped functions on
section 1's first events with :func:`measure_shipped` (in ``bench.coldstart_compare``).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tests.deployment.harness import Deployed, DeploymentEnvironment, HttpResponse
from tests.deployment.lambda_process import FunctionProcess
from tests.deployment.runtime_env import CACHE_DIR, base_python312
from tests.deployment.web_adapter import WebAdapterProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
TRACER_PRELUDE = "from aws_lambda_powertools import Tracer\nTracer(service='bench')\n"


def _locked(name: str) -> str:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text(encoding="utf-8"))
    return next(str(p["version"]) for p in lock["package"] if p["name"] == name)


def xray_layer() -> Path:
    versions = f"aws-xray-sdk=={_locked('aws-xray-sdk')}", f"wrapt=={_locked('wrapt')}"
    target = CACHE_DIR / ("xray-" + "-".join(v.split("==")[1] for v in versions))
    if not (target / "python" / "aws_xray_sdk").is_dir():
        subprocess.run(
            [str(base_python312()), "-m", "uv", "pip", "install", "--no-config", "--no-deps", "--target",
             str(target / "python"), "--python-platform", "x86_64-manylinux2014", "--python-version", "3.12",
             "--only-binary", ":all:", "--compile-bytecode", *versions],
            check=True, capture_output=True, timeout=600,
        )
    return target


def _cases(deployed: Deployed) -> dict[str, tuple[str, Callable[[], HttpResponse]]]:
    return {
        "chat: GET /v1/health": ("chat", lambda: deployed.http("GET", "/v1/health")),
        # /v1/chat and /v1/query are the streaming function's (behind the Lambda Web Adapter,
        # played by the harness; no tracer variant): the query function's own route instead.
        "query: POST /v1/search": ("query", lambda: deployed.http(
            "POST", "/v1/search", {"query": "leave days"})),
        "indexer: GET /v1/documents": ("indexer", lambda: deployed.http("GET", "/v1/documents")),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Shipped:
    """Cold starts of one function as shipped: init, first event, and spawn to answer (wall)."""

    init_ms: list[float]
    first_ms: list[float]
    wall_ms: list[float]
    peak_rss_mb: float
    import_top: list[tuple[str, float]]
    """Self import time summed per top-level package (``-X importtime``, one extra run)."""


SAME_EVENTS_TEXT = ("# Solar RAG\n\nThe Aurora widget is assembled in Busan and ships with a cobalt "
                    "casing. " + "It is serviced every spring. " * 40)


def _section_one_events(deployed: Deployed, run: int) -> dict[str, dict[str, object]]:
    """The first events of section 1 (``bench/cold_start.py``): POST /v1/chat to the chat
    function, POST /v1/query to the query function (each invoked directly, as there), and an
    SQS batch with the S3 notification of a new object to the indexer."""
    from tests.fakes import events

    key = f"bench/run-{run}.md"
    text = SAME_EVENTS_TEXT.replace("Busan", f"Busan (run {run})")
    deployed.put_object(key, text)
    return {
        "chat": events.api_event("POST", "/v1/chat",
                                 body={"messages": [{"role": "user", "content": "Hi"}]}),
        "query": events.api_event("POST", "/v1/query",
                                  body={"query": "Where is the Aurora widget assembled?"}),
        "indexer": events.sqs_event(events.s3_notification(events.created(
            key, bucket=deployed.documents_bucket, size=len(text), sequencer=f"{run + 1:018X}"))),
    }


def _ok(function: str, payload: object) -> bool:
    if function == "indexer":
        return isinstance(payload, dict) and payload.get("batchItemFailures") == []
    return isinstance(payload, dict) and payload.get("statusCode") == 200


def _import_top(process: FunctionProcess | WebAdapterProcess,
                event: Mapping[str, Any]) -> list[tuple[str, float]]:
    """One more cold start with ``-X importtime`` (the harness starts ``python -I``, which
    ignores PYTHONPROFILEIMPORTTIME): the import table of what ships."""
    from unittest import mock

    from bench.coldstart_compare import parse_importtime

    real = subprocess.Popen

    def with_importtime(args: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return real([args[0], "-X", "importtime", *args[1:]], **kwargs)

    process.cold()
    before = len(process.log())
    with mock.patch.object(subprocess, "Popen", with_importtime):
        process.invoke(event)
    process.stop()
    return parse_importtime(process.log()[before:])[:10]


class ShippedFunctions:
    """The synthesized stack in the bare runtime, for cold starts one at a time (so that
    ``bench.coldstart_compare`` can interleave them with its dev-venv runs)."""

    def __init__(self) -> None:
        self._environment = DeploymentEnvironment(Path(tempfile.mkdtemp(prefix="bench-shipped-")),
                                                  variants=("domain",))
        self._runs = 0
        try:
            self._deployed = self._environment.deploy("domain")
            self._deployed.set_secret()
            [init] = list(self._deployed.custom_resources())
            self._deployed.custom_resource(init, "Create")
        except BaseException:
            self._environment.close()
            raise

    def cold_start(self, function: str) -> dict[str, float]:
        """One fresh execution environment of ``function`` on its first event: spawn to
        answer (``total_ms``), init and first event, peak RSS."""
        process = self._deployed.function(function)
        self._runs += 1
        event = _section_one_events(self._deployed, self._runs)[function]
        process.cold()
        started = time.perf_counter()
        invocation = process.invoke(event)
        wall = (time.perf_counter() - started) * 1000
        process.stop()
        if (invocation.error is not None or invocation.init_ms is None
                or not _ok(function, invocation.payload)):
            raise RuntimeError(f"{function} as shipped: {invocation.error or invocation.payload!r}"
                               f"\n{process.log_tail(1500)}")
        return {"total_ms": wall, "import_ms": invocation.init_ms,
                "invoke_ms": invocation.duration_ms, "peak_rss_mb": invocation.peak_rss_mb}

    def import_top(self, function: str) -> list[tuple[str, float]]:
        self._runs += 1
        return _import_top(self._deployed.function(function),
                           _section_one_events(self._deployed, self._runs)[function])

    def close(self) -> None:
        for process in self._deployed.functions.values():
            process.stop()
        self._environment.close()


def measure_shipped(runs: int, functions: tuple[str, ...] = ("indexer", "chat", "query"),
                    log: Callable[[str], None] = print) -> dict[str, Shipped]:
    """``runs`` cold starts (after one discarded) of each function from its synthesized code
    asset and layers in the bare runtime, on section 1's first events."""
    shipped = ShippedFunctions()
    found: dict[str, Shipped] = {}
    try:
        log("  shipped assets deployed to the bare runtime")
        for function in functions:
            shipped.cold_start(function)  # warm-up: the page cache, the fakes' first answers
            rows = [shipped.cold_start(function) for _ in range(runs)]
            found[function] = Shipped(
                [r["import_ms"] for r in rows], [r["invoke_ms"] for r in rows],
                [r["total_ms"] for r in rows], max(r["peak_rss_mb"] for r in rows),
                shipped.import_top(function))
            log(f"  shipped cold start {function:<8} done")
    finally:
        shipped.close()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-deployed-"))
    environment = DeploymentEnvironment(workdir, variants=("domain",))
    try:
        deployed = environment.deploy("domain")
        shipped = dict(deployed.functions)
        extra = xray_layer()
        measured = {code for code, _ in _cases(deployed).values()}
        # Only the measured functions get the tracer; the others (the key authorizer in front
        # of every route) stay as shipped.
        traced = {**shipped, **{
            name: FunctionProcess(dataclasses.replace(p.config, layer_dirs=(*p.config.layer_dirs, extra)),
                                  environment.runtime, p.scratch, deployed.workdir, p.extra_env,
                                  prelude=TRACER_PRELUDE)
            for name, p in shipped.items()
            if isinstance(p, FunctionProcess) and p.config.code_name in measured
        }}
        deployed.set_secret()
        [init] = list(deployed.custom_resources())
        deployed.custom_resource(init, "Create")
        document = {"id": "a.md", "text": "Employees get 25 days of leave a year."}
        deployed.http("POST", "/v1/documents", {"documents": [document]})
        rows = []
        for label, (code_name, call) in _cases(deployed).items():
            figures: dict[str, list[tuple[float, float, float]]] = {"shipped": [], "traced": []}
            tracer_ms: list[float] = []
            for _ in range(args.runs):
                for variant, processes in (("shipped", shipped), ("traced", traced)):
                    deployed.functions.clear()
                    deployed.functions.update(processes)
                    process = deployed.function(code_name)
                    process.cold()
                    response = call()
                    invocation = response.invocation
                    if response.status != 200 or invocation is None or invocation.init_ms is None:
                        raise RuntimeError(f"{label}: {response!r}")
                    figures[variant].append(
                        (invocation.init_ms, invocation.duration_ms, invocation.peak_rss_mb))
                    if variant == "traced":
                        tracer_ms.append(invocation.prelude_ms)
            a = [i + d for i, d, _ in figures["shipped"]]
            b = [i + d for i, d, _ in figures["traced"]]
            rows.append((label, statistics.median(i for i, _, _ in figures["shipped"]),
                         statistics.median(d for _, d, _ in figures["shipped"]), statistics.median(a),
                         statistics.median(b), statistics.median(b) / statistics.median(a),
                         statistics.median(tracer_ms), max(r for _, _, r in figures["shipped"])))
        for process in [*shipped.values(), *traced.values()]:
            process.stop()
    finally:
        environment.close()
    print(f"Cold start in the bare python3.12 runtime, median of {args.runs} fresh processes per variant "
          "(interleaved)\n")
    print("| function: first event | init ms | first event ms | cold total ms | +xray tracer ms | ratio | "
          "of which Tracer() ms | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for label, init_ms, first_ms, total, traced_total, ratio, tracer, rss in rows:
        print(f"| {label} | {init_ms:.0f} | {first_ms:.0f} | {total:.0f} | {traced_total:.0f} "
              f"| {ratio:.2f} | {tracer:.0f} | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
