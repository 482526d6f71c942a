"""``rag eval``: its arguments and what it does with them (cli.py only registers it)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HELP = ("measure retrieval (hit@k, MRR, nDCG per search mode), citations, \"not found\" answers, "
        "latency and tokens over a questions file (JSONL, docs/evaluation.md)")


def add_parser(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("eval", help=HELP, description=HELP)
    parser.add_argument("questions", nargs="?", type=Path,
                        help="questions file (JSONL); not needed with --compare")
    parser.add_argument("--url", help="evaluate this running service (rag serve or a deployed "
                                      "stack's ApiUrl); default: start the local service in-process")
    parser.add_argument("--api-key", help="deployed API key, sent as x-api-key (default: RAG_API_KEY)")
    parser.add_argument("--data-dir", type=Path,
                        help="in-process only: the local data dir to use (default: RAG_DATA_DIR)")
    parser.add_argument("--index", type=Path, metavar="DIR",
                        help="first index the files of DIR (ids = paths relative to DIR)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--modes", default="hybrid,vector,keyword",
                        help="search modes to score, comma-separated")
    parser.add_argument("--answer-mode", default="hybrid", help="search mode of /v1/query")
    parser.add_argument("--no-answers", action="store_true",
                        help="retrieval only: no /v1/query (no chat model calls)")
    parser.add_argument("--not-found-pattern", action="append", default=[], metavar="REGEX",
                        help="an answer matching it counts as \"not found\" (added to the defaults)")
    parser.add_argument("--price-input", type=float, metavar="USD",
                        help="US$ per million prompt tokens (default: EVAL_PRICE_INPUT_PER_MILLION or 0.15)")
    parser.add_argument("--price-output", type=float, metavar="USD",
                        help="US$ per million completion tokens (default: EVAL_PRICE_OUTPUT_PER_MILLION "
                             "or 0.60)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=2,
                        help="retries of a request after 429/502/503/504, a timeout or a refused connection")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the JSON report here")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="show two reports (--output files) side by side; runs nothing")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from solar_rag.evaluation.errors import ServiceUnavailable
    from solar_rag.evaluation.report import compare, load_report, render

    if args.compare:
        before, after = (load_report(path) for path in args.compare)
        print(compare(before, after, names=(args.compare[0].name, args.compare[1].name)), end="")
        return 0
    if args.questions is None:
        raise ValueError("rag eval needs a questions file (or --compare BEFORE AFTER)")
    try:
        report = evaluate(args)
    except ServiceUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else render(report), end="")
    if args.output and not args.json:
        print(f"\nreport written to {args.output}", file=sys.stderr)
    return 1 if report["summary"]["failed"] else 0


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from solar_rag.evaluation.client import ServiceClient
    from solar_rag.evaluation.dataset import load_questions
    from solar_rag.evaluation.report import SCHEMA, summarise
    from solar_rag.evaluation.runner import DEFAULT_NOT_FOUND_PATTERNS, EvalOptions, Prices, run_questions
    from solar_rag.evaluation.settings import EvalSettings

    questions = load_questions(args.questions)
    settings = EvalSettings()
    options = EvalOptions(
        top_k=args.top_k, modes=tuple(m.strip() for m in args.modes.split(",") if m.strip()),
        answer_mode=args.answer_mode, answers=not args.no_answers,
        prices=Prices(settings.eval_price_input_per_million if args.price_input is None else args.price_input,
                      settings.eval_price_output_per_million if args.price_output is None
                      else args.price_output),
        not_found_patterns=(*DEFAULT_NOT_FOUND_PATTERNS, *args.not_found_pattern))
    if options.prices.input_per_million < 0 or options.prices.output_per_million < 0:
        raise ValueError("prices must not be negative")
    api_key = args.api_key or (settings.rag_api_key.get_secret_value() if settings.rag_api_key else None)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with _service(args) as (url, in_process), ServiceClient(
            url, api_key=api_key, timeout=args.timeout, retries=args.retries) as client:
        health = client.health()
        indexed = None
        if args.index is not None:
            indexed = _index(client, args.index)
        _warn_if_empty(client)
        records = run_questions(client, questions, options, progress=_progress)
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 70 + "\r")
    raw = args.questions.read_bytes()
    return {
        "schema": SCHEMA,
        "meta": {
            "questions_file": str(args.questions), "questions_sha256": hashlib.sha256(raw).hexdigest(),
            "started_at": started_at.isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 3),
            "target": {"url": _without_userinfo(url), "in_process": in_process,
                       "provider": health.get("provider"), "vector_store": health.get("vector_store")},
            "top_k": options.top_k, "modes": list(options.modes), "answer_mode": options.answer_mode,
            "answers": options.answers,
            "prices": {"input_per_million": options.prices.input_per_million,
                       "output_per_million": options.prices.output_per_million,
                       "note": "estimates; chat tokens only (embeddings are not priced)"},
            "indexed": indexed,
        },
        "summary": summarise(records, modes=options.modes, top_k=options.top_k,
                             answer_mode=options.answer_mode),
        "questions": records,
    }


@contextmanager
def _service(args: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    if args.url:
        if args.data_dir is not None:
            raise ValueError("--data-dir is for the in-process local service; it cannot apply to --url")
        yield args.url, False
        return
    from solar_rag.evaluation.local import local_service
    from solar_rag.settings import Settings

    settings = Settings() if args.data_dir is None else Settings(rag_data_dir=args.data_dir)
    print(f"rag eval: local service in-process (provider={settings.provider}, "
          f"vector_store={settings.vector_store}, data_dir={settings.rag_data_dir})", file=sys.stderr)
    with local_service(settings) as url:
        yield url, True


def _index(client: Any, directory: Path) -> dict[str, int]:
    from solar_rag.evaluation.corpus import index_directory

    counts = index_directory(client, directory)
    print("rag eval: indexed " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())), file=sys.stderr)
    return counts


def _warn_if_empty(client: Any) -> None:
    from solar_rag.evaluation.errors import RequestFailed

    try:
        documents = client.call("GET", "v1/documents?limit=1").body.get("documents")
    except RequestFailed:
        return
    if documents == []:
        print("rag eval: warning: the service has no documents (index them first, or pass --index DIR)",
              file=sys.stderr)


def _progress(number: int, total: int, question: Any) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r[{number}/{total}] {question.id[:60]:<60}")
        sys.stderr.flush()


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")
                                     if parts.hostname else ""))
