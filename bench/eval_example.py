"""`rag eval` on the shipped example set (eval/example/), with the default local settings.

    .venv/bin/python -m bench.eval_example [--output report.json]
    .venv/bin/python -m bench.run_all --only eval          # the same, as a section of results.md

Forces the **offline provider** (UPSTAGE_API_KEY emptied for the run, whatever `.env` says) and
the local store in a fresh temporary data dir, so the figures are reproducible without a key:
they measure the lexical offline retrieval and extractive answers, not Solar. Everything else
is at its default (EMBEDDING_DIMENSIONS 1024, chunking 400/60, top_k 5, answers in hybrid mode).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any
from unittest.mock import patch

from solar_rag.cli import main as rag

from bench.results import Section
from bench.scale import Scale

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "eval" / "example" / "questions.jsonl"
DOCUMENTS = ROOT / "eval" / "example" / "documents"
COMMAND = ("rag eval eval/example/questions.jsonl --index eval/example/documents "
           "--data-dir <fresh temp dir>  (UPSTAGE_API_KEY= : offline provider)")


def _offline() -> Any:
    """The default local settings with the offline provider, whatever this shell exports."""
    return patch.dict(os.environ, {"UPSTAGE_API_KEY": "", "UPSTAGE_SECRET_ID": "",
                                   "VECTOR_STORE": "local"})


def evaluate(output: Path) -> tuple[dict[str, Any], str]:
    """Runs `rag eval`; the JSON report and the printed table."""
    out = StringIO()
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as data, _offline(), redirect_stdout(out):
        code = rag(["eval", str(QUESTIONS), "--index", str(DOCUMENTS), "--data-dir", data,
                    "--output", str(output)])
    if code != 0:
        raise RuntimeError(f"rag eval exited with {code}:\n{out.getvalue()}")
    report: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return report, out.getvalue()


def run(section: Section, scale: Scale) -> None:
    """For bench.run_all: the summary as tables of the section (no baseline: nothing to ratio)."""
    with tempfile.TemporaryDirectory() as scratch:
        report, _ = evaluate(Path(scratch) / "report.json")
    summary = report["summary"]
    section.tables["retrieval per search mode (documents, top 5)"] = [
        {"mode": mode} | dict(figures)
        for mode, figures in summary["retrieval"].items()]
    answers = summary["answers"]
    section.tables["answers (hybrid)"] = [
        {"figure": name, "value": share["value"], "count": f"{share['count']}/{share['of']}"}
        for name, share in answers.items() if isinstance(share, dict) and "count" in share
    ] + [{"figure": "fact_recall", "value": answers["fact_recall"]["value"],
          "count": f"n={answers['fact_recall']['n']}"}]
    section.tables["latency (ms, nearest-rank percentiles)"] = [
        {"request": name} | dict(dist) for name, dist in summary["latency_ms"].items()]
    section.notes += [
        f"Command: `{COMMAND}`; {summary['questions']} questions ({summary['answerable']} answerable, "
        f"{summary['unanswerable']} unanswerable), {summary['failed']} failed.",
        "Offline provider: lexical embeddings and extractive answers, no tokens (cost 0). "
        "Figures with Solar need UPSTAGE_API_KEY and are not part of this run.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=Path("eval-example-report.json"))
    args = parser.parse_args(argv)
    _, table = evaluate(args.output)
    print(table, end="")
    print(f"\nreport: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
