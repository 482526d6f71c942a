"""Sum the per-question records up, print them as a table, compare two runs.

A report is plain JSON (``rag eval --output``): ``meta`` (target, settings, time),
``summary`` (the figures) and ``questions`` (one record per question, see ``runner``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from solar_rag.evaluation import metrics

SCHEMA = "solar-rag-eval/1"
PERCENTILES = (50, 90, 95)


def summarise(records: Sequence[Mapping[str, Any]], *, modes: Sequence[str], top_k: int,
              answer_mode: str) -> dict[str, Any]:
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    retrieval: dict[str, Any] = {}
    for mode in modes:
        scored = [r["search"][mode] for r in answerable if mode in r["search"]]
        retrieval[mode] = {"n": len(scored), "k": top_k} | {
            name: metrics.mean([s[key] for s in scored])
            for name, key in (("hit@1", "hit@1"), ("hit@3", "hit@3"), (f"hit@{top_k}", "hit@k"),
                              ("mrr", "rr"), (f"ndcg@{top_k}", "ndcg@k"))}
    answers = [r["answer"] for r in records if r["answer"] is not None]
    with_citations = [a for a in answers if a["citation_valid"] is not None]
    answered = [r["answer"] for r in answerable if r["answer"] is not None]
    grounded = [a for a in answered if not a["not_found"]]
    with_facts = [a for r in answerable if (a := r["answer"]) is not None and r["expected_facts"]]
    refused = [r["answer"] for r in unanswerable if r["answer"] is not None]
    latency: dict[str, Any] = {}
    for mode in modes:
        latency[f"search:{mode}"] = _distribution(
            [r["search"][mode]["latency_ms"] for r in records if mode in r["search"]])
    latency["query"] = _distribution([a["latency_ms"] for a in answers])
    prompt = [a["usage"]["prompt_tokens"] for a in answers]
    completion = [a["usage"]["completion_tokens"] for a in answers]
    costs = [a["cost_usd"] for a in answers]
    return {
        "questions": len(records), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "failed": sum(1 for r in records if r["failed"]),
        "retrieval": retrieval,
        "answers": {
            "n": len(answers), "mode": answer_mode,
            "citation_validity": _share([a["citation_valid"] for a in with_citations]),
            "with_citations": _share([a["citation_valid"] is not None for a in answers]),
            "unanswerable_not_found": _share([a["not_found"] for a in refused]),
            "answerable_not_found": _share([a["not_found"] for a in answered]),
            "cited_expected_document": _share([a["cited_expected"] for a in grounded]),
            "fact_recall": {"value": metrics.mean([
                len(a["facts_found"]) / (len(a["facts_found"]) + len(a["facts_missing"]))
                for a in with_facts]), "n": len(with_facts)},
        },
        "latency_ms": latency,
        "tokens": {"n": len(answers), "prompt_mean": metrics.mean(prompt),
                   "completion_mean": metrics.mean(completion),
                   "total": sum(prompt) + sum(completion)},
        "cost_usd": {"per_question_mean": metrics.mean(costs), "total": sum(costs)},
    }


def _share(flags: Sequence[bool]) -> dict[str, Any]:
    count = sum(1 for f in flags if f)
    return {"value": count / len(flags) if flags else None, "count": count, "of": len(flags)}


def _distribution(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values)} | {f"p{q}": metrics.percentile(values, q) for q in PERCENTILES} | {
        "max": max(values)}


# -- figures as rows -------------------------------------------------------------------------

Better = Literal["higher", "lower", ""]


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    label: str
    value: float | None
    text: str
    better: Better


def rows(summary: Mapping[str, Any]) -> list[Row]:
    out: list[Row] = [
        Row("questions", "questions (answerable / unanswerable)", summary["questions"],
            f"{summary['questions']} ({summary['answerable']} / {summary['unanswerable']})", ""),
        Row("failed", "failed questions", summary["failed"], str(summary["failed"]), "lower"),
    ]
    for mode, figures in summary["retrieval"].items():
        for name, value in figures.items():
            if name in ("n", "k"):
                continue
            out.append(Row(f"retrieval.{mode}.{name}", f"{mode:<7} {name}", value,
                           _number(value) + f"  (n={figures['n']})", "higher"))
    answers = summary["answers"]
    for key, label in (("citation_validity", "citation validity (markers → retrieved sources)"),
                       ("with_citations", "answers with citations"),
                       ("unanswerable_not_found", "unanswerable answered \"not found\""),
                       ("answerable_not_found", "answerable answered \"not found\""),
                       ("cited_expected_document", "answers citing an expected document")):
        share = answers[key]
        better: Better = "lower" if key == "answerable_not_found" else (
            "" if key == "with_citations" else "higher")
        out.append(Row(f"answers.{key}", label, share["value"],
                       _number(share["value"]) + f"  ({share['count']}/{share['of']})", better))
    facts = answers["fact_recall"]
    out.append(Row("answers.fact_recall", "expected facts in the answer", facts["value"],
                   _number(facts["value"]) + f"  (n={facts['n']})", "higher"))
    for name, dist in summary["latency_ms"].items():
        for stat in (*(f"p{q}" for q in PERCENTILES), "max"):
            if stat in dist:
                out.append(Row(f"latency.{name}.{stat}", f"latency {name} {stat}", dist[stat],
                               f"{dist[stat]:,.1f} ms", "lower"))
    tokens, cost = summary["tokens"], summary["cost_usd"]
    out += [
        Row("tokens.prompt_mean", "prompt tokens per question", tokens["prompt_mean"],
            _number(tokens["prompt_mean"], 1), "lower"),
        Row("tokens.completion_mean", "completion tokens per question", tokens["completion_mean"],
            _number(tokens["completion_mean"], 1), "lower"),
        Row("cost.per_question", "est. cost per question (US$)", cost["per_question_mean"],
            _money(cost["per_question_mean"]), "lower"),
        Row("cost.total", "est. cost of the run (US$)", cost["total"], _money(cost["total"]), "lower"),
    ]
    return out


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6f}"


# -- text output -----------------------------------------------------------------------------


def render(report: Mapping[str, Any]) -> str:
    meta = report["meta"]
    target = meta["target"]
    lines = [f"rag eval — {meta['questions_file']} against {target['url']}"
             + (" (in-process local service)" if target.get("in_process") else ""),
             f"provider={target.get('provider')} vector_store={target.get('vector_store')} "
             f"top_k={meta['top_k']} answer mode={meta['answer_mode']} "
             f"prices (est., US$/1M tokens) in={meta['prices']['input_per_million']} "
             f"out={meta['prices']['output_per_million']}", ""]
    table = rows(report["summary"])
    width = max(len(r.label) for r in table)
    lines += [f"{r.label:<{width}}  {r.text}" for r in table]
    notes = _questions_to_look_at(report)
    if notes:
        lines += ["", "questions to look at:"] + [f"  {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _questions_to_look_at(report: Mapping[str, Any]) -> list[str]:
    mode = report["meta"]["answer_mode"]
    notes = []
    for record in report["questions"]:
        label = f"{record['id']} (line {record['line']})"
        for error in record["errors"]:
            notes.append(f"{label}: FAILED {error['request']}: {error['error']}")
        scored = record["search"].get(mode)
        if record["answerable"] and scored is not None and scored.get("hit@k") == 0.0:
            notes.append(f"{label}: no expected document in the top {report['meta']['top_k']} "
                         f"({mode}); got {', '.join(scored['documents'][:3]) or 'nothing'}")
        answer = record["answer"]
        if answer is None:
            continue
        if answer["citation_valid"] is False:
            notes.append(f"{label}: invalid citations: unknown markers {answer['unknown_markers']}, "
                         f"not retrieved {answer['citations_not_retrieved']}, without marker "
                         f"{answer['citations_without_marker']}")
        if not record["answerable"] and not answer["not_found"]:
            cited = metrics.distinct_documents(c["document_id"] for c in answer["citations"])
            notes.append(f"{label}: unanswerable, but answered (cited {', '.join(cited)})")
        if answer["facts_missing"]:
            notes.append(f"{label}: facts missing from the answer: {answer['facts_missing']}")
    return notes


def compare(before: Mapping[str, Any], after: Mapping[str, Any], *, names: tuple[str, str] = (
        "before", "after")) -> str:
    """Both runs' figures side by side, the change, and per-question retrieval changes."""
    old = {r.key: r for r in rows(before["summary"])}
    new = {r.key: r for r in rows(after["summary"])}
    keys = list(old) + [k for k in new if k not in old]
    label_width = max(len(r.label) for r in (*old.values(), *new.values()))
    a_width = max(len(names[0]), *(len(r.text) for r in old.values()))
    b_width = max(len(names[1]), *(len(r.text) for r in new.values()))
    lines = [f"{'':<{label_width}}  {names[0]:<{a_width}}  {names[1]:<{b_width}}  change"]
    for key in keys:
        a, b = old.get(key), new.get(key)
        row = a or b
        assert row is not None
        lines.append(f"{row.label:<{label_width}}  {(a.text if a else '–'):<{a_width}}  "
                     f"{(b.text if b else '–'):<{b_width}}  {_change(a, b)}")
    for warning in _incomparable(before, after):
        lines.append(f"note: {warning}")
    changes = question_changes(before, after)
    if changes:
        lines += ["", "questions whose retrieval changed (hit@k in the answer mode):"]
        lines += [f"  {c}" for c in changes]
    return "\n".join(lines) + "\n"


def _change(a: Row | None, b: Row | None) -> str:
    if a is None or b is None or a.value is None or b.value is None:
        return ""
    delta = b.value - a.value
    if delta == 0:
        return "="
    verdict = ""
    if a.better:
        improved = delta > 0 if a.better == "higher" else delta < 0
        verdict = " better" if improved else " worse"
    if a.key.startswith("latency."):
        return f"{delta:+,.1f} ms{verdict}"
    if a.key.startswith("cost."):
        return f"{delta:+.6f}{verdict}"
    return f"{delta:+.3f}{verdict}"


def _incomparable(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    warnings = []
    a, b = before["meta"], after["meta"]
    if a.get("questions_sha256") != b.get("questions_sha256"):
        warnings.append("the runs used different question files: compare with care")
    for key in ("top_k", "answer_mode"):
        if a.get(key) != b.get(key):
            warnings.append(f"{key} differs ({a.get(key)} vs {b.get(key)})")
    return warnings


def question_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    mode_a, mode_b = before["meta"]["answer_mode"], after["meta"]["answer_mode"]
    old = {r["id"]: r for r in before["questions"]}
    changes = []
    for record in after["questions"]:
        previous = old.get(record["id"])
        if previous is None or not record["answerable"]:
            continue
        hit_a = previous["search"].get(mode_a, {}).get("hit@k")
        hit_b = record["search"].get(mode_b, {}).get("hit@k")
        if hit_a is not None and hit_b is not None and hit_a != hit_b:
            changes.append(f"{record['id']}: {'found' if hit_b else 'lost'} an expected document")
    return changes


def load_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the report ({error})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a `rag eval --output` report ({SCHEMA})")
    return data
