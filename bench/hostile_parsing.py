"""Hostile documents: time and peak memory of the parsers, before and after issue 13.

    .venv/bin/python -m bench.hostile_parsing                  # every input, old and new
    .venv/bin/python -m bench.hostile_parsing --only md_atx_spaces,pdf_ten_70mb_streams
    .venv/bin/python -m bench.hostile_parsing --new-only       # skip the (slow) old parsers

Each input of ``bench.hostile_inputs`` is read and parsed (``load_file`` + ``parse_document``
+ the chunker, i.e. everything ``rag index`` does before embedding) in a fresh process, so
its peak RSS (``ru_maxrss``) is the document's. "old" runs the parsers of the baseline commit
(extracted with ``git archive``), "new" the working tree; an old run over ``--timeout``
seconds is stopped and reported as "> timeout". Figures are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "6c0d332"  # main before issue 13's parsing work


def _peak_kb() -> int:
    """VmHWM: Linux carries ru_maxrss over from the parent across fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _worker(name: str, size: int) -> None:
    from solar_rag.errors import RagError
    from solar_rag.parsing.files import load_file
    from solar_rag.parsing.parsers import parse_document
    from solar_rag.text.chunking import Chunker

    from bench.hostile_inputs import BY_NAME

    hostile = BY_NAME[name]
    data = hostile.build(size)
    before = _peak_kb()
    started = time.perf_counter()
    try:
        doc = load_file(data, hostile.filename, document_id=name)
        parsed = parse_document(doc)
        chunks = Chunker(size_tokens=400, overlap_tokens=60).chunk(doc, parsed, "v")
        outcome = f"parses ({len(chunks)} chunks)"
    except RagError as error:
        outcome = f"{type(error).__name__}"
    except Exception as error:  # the old parsers crash on some inputs: that is a figure too
        outcome = f"crash: {type(error).__name__}"
    seconds = time.perf_counter() - started
    peak = _peak_kb()
    import solar_rag

    print(json.dumps({"seconds": seconds, "outcome": outcome, "input_bytes": len(data),
                      "peak_mb": peak / 1024, "before_mb": before / 1024,
                      "code": solar_rag.__file__}))


def _run(name: str, size: int, pythonpath: str, timeout: float) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    command = [sys.executable, "-m", "bench.hostile_parsing", "--worker", name, str(size)]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "outcome": f"> {timeout:g} s (stopped)", "peak_mb": None}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"seconds": time.perf_counter() - started, "peak_mb": None,
                "outcome": f"process died ({done.returncode}): {done.stderr.strip()[-120:]}"}
    result: dict[str, object] = json.loads(lines[-1])
    return result


def _baseline_tree(commit: str, directory: Path) -> Path:
    archive = subprocess.run(["git", "archive", commit, "layers/shared"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory / "layers" / "shared"


def _fmt(value: object, unit: str) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value:,.2f} {unit}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--worker", nargs=2, metavar=("NAME", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--only", default="")
    parser.add_argument("--new-only", action="store_true")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--baseline", default=BASELINE, help="commit of the old parsers")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker[0], int(args.worker[1]))
        return 0
    from bench.hostile_inputs import HOSTILE

    wanted = {n for n in args.only.split(",") if n}
    inputs = [h for h in HOSTILE if not wanted or h.name in wanted]
    new_path = os.pathsep.join([str(ROOT / "layers" / "shared"), str(ROOT)])
    print("| input | size | old: outcome | old: time | old: peak RSS | new: outcome "
          "| new: time | new: peak RSS |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as temp:
        old_path = None
        if not args.new_only:
            old_path = os.pathsep.join([str(_baseline_tree(args.baseline, Path(temp))), str(ROOT)])
        for hostile in inputs:
            new = _run(hostile.name, hostile.size, new_path, args.timeout)
            old = (_run(hostile.name, hostile.size, old_path, args.timeout) if old_path
                   else {"outcome": "not run"})
            size = new.get("input_bytes")
            megabytes = size / 1e6 if isinstance(size, int) else None
            print(f"| {hostile.name} | {_fmt(megabytes, 'MB')} "
                  f"| {old['outcome']} | {_fmt(old.get('seconds'), 's')} "
                  f"| {_fmt(old.get('peak_mb'), 'MB')} | {new['outcome']} "
                  f"| {_fmt(new.get('seconds'), 's')} | {_fmt(new.get('peak_mb'), 'MB')} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
