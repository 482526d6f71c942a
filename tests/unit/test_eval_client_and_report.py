"""rag eval's HTTP client (retries, errors), answer scoring and the report, without a server."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from solar_rag.evaluation.client import ServiceClient
from solar_rag.evaluation.dataset import Question
from solar_rag.evaluation.errors import RequestFailed, ServiceUnavailable
from solar_rag.evaluation.report import compare, render, rows, summarise
from solar_rag.evaluation.runner import (
    DEFAULT_NOT_FOUND_PATTERNS,
    EvalOptions,
    Prices,
    run_questions,
    score_answer,
)

Handler = Any


def _client(handler: Handler, *, retries: int = 2, sleeps: list[float] | None = None,
            api_key: str | None = None) -> ServiceClient:
    waits = sleeps if sleeps is not None else []
    return ServiceClient("http://service.test/", api_key=api_key, retries=retries,
                         transport=httpx.MockTransport(handler), sleep=waits.append, backoff=0.25)


def test_retries_429_and_5xx_honouring_retry_after_then_succeeds() -> None:
    answers = iter([httpx.Response(429, headers={"retry-after": "1.5"}, json={"detail": "slow down"}),
                    httpx.Response(503, json={"detail": "not configured"}),
                    httpx.Response(200, json={"results": []})])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    sleeps: list[float] = []
    timed = _client(handler, sleeps=sleeps, api_key="k-1").call("POST", "v1/search", {"query": "q"})
    assert timed.body == {"results": []} and timed.attempts == 3
    assert sleeps == [1.5, 0.5]  # Retry-After, then the backoff of the second attempt
    assert [r.url.path for r in seen] == ["/v1/search"] * 3
    assert all(r.headers["x-api-key"] == "k-1" for r in seen)
    assert json.loads(seen[0].content) == {"query": "q"}


def test_gives_up_after_the_retries_with_the_service_detail() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502, json={"detail": "upstream error"})

    with pytest.raises(RequestFailed, match="HTTP 502: upstream error") as caught:
        _client(handler, retries=2).call("POST", "v1/query", {})
    assert (caught.value.status, caught.value.attempts, len(calls)) == (502, 3, 3)


@pytest.mark.parametrize("status", [400, 404, 422, 500])
def test_client_errors_and_500_are_not_retried(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, text="x" * 1000)

    with pytest.raises(RequestFailed) as caught:
        _client(handler).call("GET", "v1/documents")
    assert len(calls) == 1 and caught.value.status == status
    assert len(str(caught.value)) < 350  # long bodies are cut


def test_timeouts_and_connection_errors_are_retried_then_reported() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(RequestFailed, match="timed out") as caught:
        _client(handler, retries=1).call("POST", "v1/query", {})
    assert caught.value.status is None and caught.value.attempts == 2

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServiceUnavailable, match=r"cannot reach http://service\.test"):
        _client(refused, retries=0).health()


def test_health_names_a_refused_key_and_a_foreign_service() -> None:
    with pytest.raises(ServiceUnavailable, match=r"refused the API key \(HTTP 401\).*RAG_API_KEY"):
        _client(lambda r: httpx.Response(401, json={"message": "Unauthorized"})).health()
    with pytest.raises(ServiceUnavailable, match="is this a solar-rag service"):
        _client(lambda r: httpx.Response(404, text="<html>nope</html>")).health()
    with pytest.raises(RequestFailed, match="not a JSON object"):
        _client(lambda r: httpx.Response(200, text="[1]")).call("GET", "v1/health")
    with pytest.raises(ServiceUnavailable, match="http:// or https://"):
        ServiceClient("localhost:8000")


# -- scoring an answer ------------------------------------------------------------------------

NOT_FOUND = re.compile("|".join(f"(?:{p})" for p in DEFAULT_NOT_FOUND_PATTERNS), re.IGNORECASE)
OPTIONS = EvalOptions(prices=Prices(0.15, 0.60))
QUESTION = Question(id="q", question="How many days?", line=1, expected={"leave.md": 1},
                    expected_facts=(("25 days",),))


def _body(answer: str, citations: list[tuple[int, str, str]], usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {"answer": answer, "model": "m", "usage": usage or {},
            "citations": [{"index": i, "document_id": d, "chunk_id": c, "text": "", "score": 1.0}
                          for i, d, c in citations]}


def test_valid_citations_facts_tokens_and_cost() -> None:
    scored = score_answer(_body("25 days [1].", [(1, "leave.md", "c1")],
                                {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}),
                          QUESTION, OPTIONS, NOT_FOUND, {("leave.md", "c1")}, 0.2)
    assert scored["citation_valid"] is True and scored["cited_expected"] is True
    assert scored["not_found"] is False and scored["facts_found"] == ["25 days"]
    assert scored["cost_usd"] == pytest.approx((1000 * 0.15 + 100 * 0.60) / 1e6)
    assert scored["latency_ms"] == pytest.approx(200)


@pytest.mark.parametrize(("answer", "citations", "retrieved", "problem"), [
    ("See [2].", [(1, "leave.md", "c1")], {("leave.md", "c1")}, "unknown_markers"),
    ("See [1].", [(1, "leave.md", "c9")], {("leave.md", "c1")}, "citations_not_retrieved"),
    ("See [1].", [(1, "leave.md", "c1"), (2, "leave.md", "c2")],
     {("leave.md", "c1"), ("leave.md", "c2")}, "citations_without_marker"),
])
def test_invalid_citations_are_caught(answer: str, citations: list[tuple[int, str, str]],
                                      retrieved: set[tuple[str, str]], problem: str) -> None:
    scored = score_answer(_body(answer, citations), QUESTION, OPTIONS, NOT_FOUND, retrieved, 0.1)
    assert scored["citation_valid"] is False
    assert scored[problem], scored


def test_not_found_in_either_language_or_without_citations() -> None:
    for answer in ("I could not find the answer to this question in the indexed documents.",
                   "색인된 문서에서 이 질문의 답을 찾을 수 없습니다.",
                   "Some claim without any source."):
        scored = score_answer(_body(answer, []), QUESTION, OPTIONS, NOT_FOUND, set(), 0.1)
        assert scored["not_found"] is True and scored["citation_valid"] is None
    with pytest.raises(RequestFailed, match="no `answer`"):
        score_answer({"answer": 5}, QUESTION, OPTIONS, NOT_FOUND, None, 0.1)


def test_a_malformed_search_response_fails_the_question_not_the_run() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/search":
            return httpx.Response(200, json={"hits": []})
        return httpx.Response(200, json=_body("25 days [1].", [(1, "leave.md", "c1")]))

    [record] = run_questions(_client(handler), [QUESTION], EvalOptions(modes=("hybrid",)))
    assert record["failed"] is True and record["search"] == {}
    assert "no `results`" in record["errors"][0]["error"]
    assert record["answer"]["citations_not_retrieved"] == []  # nothing to check against


# -- the report -------------------------------------------------------------------------------


def _record(identifier: str, *, answerable: bool = True, hit: float = 1.0, rr: float = 1.0,
            not_found: bool = False, valid: bool | None = True, latency: float = 10.0,
            failed: bool = False) -> dict[str, Any]:
    search = {"hybrid": {"documents": ["d"], "latency_ms": latency}}
    if answerable:
        search["hybrid"] |= {"hit@1": hit, "hit@3": hit, "hit@k": hit, "rr": rr, "ndcg@k": rr}
    return {"id": identifier, "line": 1, "answerable": answerable, "expected_facts": ["x"] if answerable else [],
            "search": search, "errors": [{"request": "query", "status": 502, "error": "HTTP 502"}] if failed else [],
            "failed": failed,
            "answer": None if failed else {
                "not_found": not_found, "citation_valid": valid, "cited_expected": answerable and not not_found,
                "facts_found": ["x"] if answerable and hit else [], "facts_missing": [] if hit or not answerable else ["x"],
                "latency_ms": latency * 2, "citations": [], "unknown_markers": [], "citations_not_retrieved": [],
                "citations_without_marker": [],
                "usage": {"prompt_tokens": 100, "completion_tokens": 10}, "cost_usd": 0.001}}


def test_summary_figures() -> None:
    records = [_record("a", latency=10), _record("b", hit=0.0, rr=0.0, latency=30),
               _record("c", rr=0.5, latency=20), _record("u", answerable=False, not_found=True, valid=None),
               _record("f", failed=True)]
    summary = summarise(records, modes=["hybrid"], top_k=5, answer_mode="hybrid")
    assert (summary["questions"], summary["answerable"], summary["unanswerable"], summary["failed"]) == (5, 4, 1, 1)
    hybrid = summary["retrieval"]["hybrid"]
    assert hybrid["n"] == 4 and hybrid["hit@5"] == 0.75 and hybrid["mrr"] == pytest.approx(2.5 / 4)
    assert summary["answers"]["unanswerable_not_found"] == {"value": 1.0, "count": 1, "of": 1}
    assert summary["answers"]["citation_validity"] == {"value": 1.0, "count": 3, "of": 3}
    assert summary["answers"]["fact_recall"] == {"value": pytest.approx(2 / 3), "n": 3}
    assert summary["latency_ms"]["search:hybrid"] == {"n": 5, "p50": 10.0, "p90": 30.0, "p95": 30.0, "max": 30.0}
    assert summary["tokens"]["total"] == 440 and summary["cost_usd"]["total"] == pytest.approx(0.004)
    assert {r.key for r in rows(summary)} >= {"retrieval.hybrid.mrr", "latency.query.p95", "cost.total"}


def _report(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schema": "solar-rag-eval/1",
            "meta": {"questions_file": "q.jsonl", "questions_sha256": "s", "top_k": 5, "answer_mode": "hybrid",
                     "target": {"url": "http://x", "provider": "offline", "vector_store": "local"},
                     "prices": {"input_per_million": 0.15, "output_per_million": 0.6}},
            "summary": summarise(records, modes=["hybrid"], top_k=5, answer_mode="hybrid"),
            "questions": records}


def test_render_and_compare() -> None:
    before = _report([_record("a"), _record("b", hit=0.0, rr=0.0)])
    after = _report([_record("a"), _record("b", rr=0.5, latency=5.0)])
    text = render(before)
    assert "hybrid  hit@5" in text and "b (line 1): no expected document in the top 5" in text
    compared = compare(before, after)
    mrr = next(line for line in compared.splitlines() if line.startswith("hybrid  mrr"))
    assert mrr.rstrip().endswith("+0.250 better")
    latency = next(line for line in compared.splitlines() if line.startswith("latency search:hybrid max"))
    assert "better" not in latency and latency.rstrip().endswith("=")
    p50 = next(line for line in compared.splitlines() if line.startswith("latency search:hybrid p50"))
    assert p50.rstrip().endswith("-5.0 ms better")
    assert "b: found an expected document" in compared
    after["meta"]["top_k"] = 3
    assert "top_k differs (5 vs 3)" in compare(before, after)


def test_a_key_refused_in_the_middle_of_a_run_stops_it() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/query":
            return httpx.Response(403, json={"message": "Forbidden"})
        return httpx.Response(200, json={"results": [{"document_id": "leave.md", "chunk_id": "c1"}]})

    with pytest.raises(ServiceUnavailable, match=r"query was refused: HTTP 403: Forbidden"):
        run_questions(_client(handler), [QUESTION], EvalOptions(modes=("keyword",)))


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"1\.\.50"):
        EvalOptions(top_k=51)
    with pytest.raises(ValueError, match="search modes"):
        EvalOptions(modes=("semantic",))
    with pytest.raises(ValueError, match="not-found pattern"):
        EvalOptions(not_found_patterns=("(",))
