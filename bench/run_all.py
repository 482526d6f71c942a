"""Run every benchmark of issues 7 and 17 side by side and write bench/results.md and results.json.

    .venv/bin/python -m bench.run_all            # full size, ≈ 15 min on 2 quiet cores
    .venv/bin/python -m bench.run_all --quick    # ~2 min, for development (or BENCH_SCALE=quick)
    .venv/bin/python -m bench.run_all --only chunking,local_store

Baselines come from the ``bench`` dependency group (``uv sync --inexact --group bench``);
without it they are reported as n/a. A benchmark that crashes is reported as such and the
others still run: benchmarks are measurements, not tests.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import results
from bench.scale import from_env

BENCHMARKS = (
    ("cold_start", "bench.coldstart_compare", "1. Cold start of each Lambda handler"),
    ("ingestion", "bench.ingestion", "2. Ingestion throughput under Upstage's rate limits"),
    ("query", "bench.query_overhead", "3. Query overhead (time in our code)"),
    ("local_store", "bench.local_store", "4. Local store vs ChromaDB"),
    ("chunking", "bench.chunking", "5. Chunking"),
    ("eval", "bench.eval_example", "6. rag eval on the example set (offline provider)"),
)
OUTPUT = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (~2 min)")
    parser.add_argument("--only", default="", help="comma-separated keys: "
                        + ",".join(key for key, _, _ in BENCHMARKS))
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where results.* go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("solar_rag").setLevel(logging.ERROR)  # retries are counted, not logged
    for noisy in ("opensearch", "urllib3.connectionpool", "werkzeug"):  # expected 404s, reconnects
        logging.getLogger(noisy).setLevel(logging.ERROR)
    scale = from_env(args.quick)
    wanted = {key.strip() for key in args.only.split(",") if key.strip()}
    unknown = wanted - {key for key, _, _ in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started_at = datetime.now(UTC)
    load_at_start = os.getloadavg()[0]
    started = time.perf_counter()
    sections: list[results.Section] = []
    for key, module_name, title in BENCHMARKS:
        if wanted and key not in wanted:
            continue
        section = results.Section(key, title)
        print(f"[bench] {title} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            importlib.import_module(module_name).run(section, scale)
        except Exception as exc:  # report it and go on with the others
            traceback.print_exc()
            section.error = f"{type(exc).__name__}: {exc}"[:500]
        section.seconds = time.perf_counter() - began
        print(f"[bench] {title}: {section.seconds:.0f} s", file=sys.stderr, flush=True)
        sections.append(section)
    data = results.report(sections, scale=scale.name, seconds=time.perf_counter() - started,
                          started=started_at, load=(load_at_start, os.getloadavg()[0]))
    md_path, json_path = results.write(data, args.output)
    print(f"[bench] wrote {md_path} and {json_path} in {data['seconds']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
