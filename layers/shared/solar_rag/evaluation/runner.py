"""Ask the service every question and score each answer (``report`` sums them up).

Per question: ``POST /v1/search`` once per search mode (retrieval metrics), then
``POST /v1/query`` once in the answer mode (citations, "not found", facts, tokens). A request
that fails after its retries marks the question failed with the reason; the run goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from solar_rag.adapters.extractive_answers import NOT_FOUND as OFFLINE_NOT_FOUND
from solar_rag.evaluation import metrics
from solar_rag.evaluation.dataset import Question
from solar_rag.evaluation.errors import RequestFailed, ServiceUnavailable
from solar_rag.services.prompt import NOT_FOUND_ANSWER

if TYPE_CHECKING:
    from solar_rag.evaluation.client import ServiceClient

MODES = ("hybrid", "vector", "keyword")
DEFAULT_NOT_FOUND_PATTERNS = (
    re.escape(NOT_FOUND_ANSWER),
    re.escape(OFFLINE_NOT_FOUND),
    r"could not find (?:the answer|.{0,40}relevant)",
    r"찾을 수 없",  # Solar answers in the question's language
)


@dataclass(frozen=True, slots=True)
class Prices:
    """Estimated US$ per million tokens of the chat model (see docs/evaluation.md)."""

    input_per_million: float
    output_per_million: float


@dataclass(frozen=True, slots=True)
class EvalOptions:
    top_k: int = 5
    modes: tuple[str, ...] = MODES
    answer_mode: str = "hybrid"
    answers: bool = True
    prices: Prices = field(default_factory=lambda: Prices(0.15, 0.60))
    not_found_patterns: tuple[str, ...] = DEFAULT_NOT_FOUND_PATTERNS

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= 50:
            raise ValueError("top_k must be within 1..50 (the API's limit)")
        unknown = [m for m in (*self.modes, self.answer_mode) if m not in MODES]
        if unknown or not self.modes:
            raise ValueError(f"search modes are {', '.join(MODES)}")
        for pattern in self.not_found_patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"not-found pattern {pattern!r}: {error}") from None


Progress = Callable[[int, int, Question], None]


def run_questions(client: ServiceClient, questions: Sequence[Question], options: EvalOptions, *,
                  progress: Progress | None = None) -> list[dict[str, Any]]:
    """One JSON-ready record per question, in order."""
    not_found = re.compile("|".join(f"(?:{p})" for p in options.not_found_patterns), re.IGNORECASE)
    records = []
    for number, question in enumerate(questions, start=1):
        if progress is not None:
            progress(number, len(questions), question)
        records.append(evaluate_question(client, question, options, not_found))
    return records


def evaluate_question(client: ServiceClient, question: Question, options: EvalOptions,
                      not_found: re.Pattern[str]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": question.id, "line": question.line, "question": question.question,
        "language": question.language, "tags": list(question.tags),
        "answerable": question.answerable, "expected_documents": dict(question.expected),
        "expected_facts": [_fact(f) for f in question.expected_facts],
        "search": {}, "answer": None, "errors": [],
    }
    request: dict[str, Any] = {"query": question.question, "top_k": options.top_k}
    if question.filters:
        request["filters"] = dict(question.filters)
    retrieved: dict[str, set[tuple[str, str]]] = {}
    for mode in options.modes:
        try:
            timed = client.call("POST", "v1/search", {**request, "mode": mode})
            results = _results(timed.body)
        except RequestFailed as error:
            _fail(record, f"search ({mode})", error)
            continue
        retrieved[mode] = {(r["document_id"], r["chunk_id"]) for r in results}
        record["search"][mode] = score_search(results, question, options.top_k, timed.seconds)
    if options.answers:
        try:
            timed = client.call("POST", "v1/query", {**request, "mode": options.answer_mode})
            record["answer"] = score_answer(timed.body, question, options, not_found,
                                            retrieved.get(options.answer_mode), timed.seconds)
        except RequestFailed as error:
            _fail(record, "query", error)
    record["failed"] = bool(record["errors"])
    return record


def _fail(record: dict[str, Any], what: str, error: RequestFailed) -> None:
    if error.status in (401, 403):
        # The key worked for /v1/health: a refusal now is not this question's fault.
        raise ServiceUnavailable(f"{what} was refused: {error}") from None
    record["errors"].append({"request": what, "status": error.status, "attempts": error.attempts,
                             "error": str(error)})


def _results(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    results = body.get("results")
    if not isinstance(results, list) or not all(
            isinstance(r, dict) and isinstance(r.get("document_id"), str)
            and isinstance(r.get("chunk_id"), str) for r in results):
        raise RequestFailed("the search response has no `results` list of chunks")
    return results


def score_search(results: Sequence[Mapping[str, Any]], question: Question, k: int,
                 seconds: float) -> dict[str, Any]:
    ranked = metrics.distinct_documents(str(r["document_id"]) for r in results)
    scored: dict[str, Any] = {"documents": ranked, "latency_ms": seconds * 1000}
    if question.answerable:
        relevant = question.expected
        scored |= {"hit@1": metrics.hit_at(ranked, relevant, 1),
                   "hit@3": metrics.hit_at(ranked, relevant, min(3, k)),
                   "hit@k": metrics.hit_at(ranked, relevant, k),
                   "rr": metrics.reciprocal_rank(ranked, relevant, k),
                   "ndcg@k": metrics.ndcg(ranked, relevant, k)}
    return scored


def score_answer(body: Mapping[str, Any], question: Question, options: EvalOptions,
                 not_found: re.Pattern[str], retrieved: set[tuple[str, str]] | None,
                 seconds: float) -> dict[str, Any]:
    answer = body.get("answer")
    citations = body.get("citations")
    if not isinstance(answer, str) or not isinstance(citations, list) or not all(
            isinstance(c, dict) and isinstance(c.get("index"), int)
            and isinstance(c.get("document_id"), str) for c in citations):
        raise RequestFailed("the query response has no `answer` and `citations`")
    raw_usage = body.get("usage")
    usage: Mapping[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    prompt_tokens = _count(usage, "prompt_tokens")
    completion_tokens = _count(usage, "completion_tokens")
    markers = metrics.citation_markers(answer)
    indexes = {c["index"] for c in citations}
    unknown_markers = sorted({n for n in markers if n not in indexes})
    # Each cited chunk must be one the search in the same mode retrieved for the question.
    not_retrieved = ([] if retrieved is None else
                     [c["index"] for c in citations
                      if (c["document_id"], str(c.get("chunk_id"))) not in retrieved])
    uncited = sorted(indexes - set(markers))
    cites = bool(markers or citations)
    cited_documents = metrics.distinct_documents(c["document_id"] for c in citations)
    found = metrics.facts_found(answer, question.expected_facts)
    return {
        "text": answer, "model": body.get("model"), "latency_ms": seconds * 1000,
        "citations": [{"index": c["index"], "document_id": c["document_id"],
                       "chunk_id": c.get("chunk_id")} for c in citations],
        "markers": markers,
        "not_found": not citations or bool(not_found.search(answer)),
        "citation_valid": (not unknown_markers and not not_retrieved and not uncited) if cites else None,
        "unknown_markers": unknown_markers, "citations_not_retrieved": not_retrieved,
        "citations_without_marker": uncited,
        "cited_expected": (any(d in question.expected for d in cited_documents)
                           if question.answerable else None),
        "facts_found": [_fact(f) for f, ok in zip(question.expected_facts, found, strict=True) if ok],
        "facts_missing": [_fact(f) for f, ok in zip(question.expected_facts, found, strict=True)
                          if not ok],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": _count(usage, "total_tokens") or prompt_tokens + completion_tokens},
        "cost_usd": metrics.cost_usd(prompt_tokens, completion_tokens,
                                     input_per_million=options.prices.input_per_million,
                                     output_per_million=options.prices.output_per_million),
    }


def _fact(spellings: Sequence[str]) -> str:
    return " | ".join(spellings)


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
