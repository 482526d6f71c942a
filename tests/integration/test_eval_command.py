"""`rag eval` on the shipped example set: in-process (offline provider), against `rag serve`
with the fake Upstage (citations, tokens, "not found", a failing question), `--compare`, and
the ways it refuses to run."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from solar_rag.cli import main
from solar_rag.services.prompt import NOT_FOUND_ANSWER
from solar_rag.settings import get_settings

from tests.fakes.live_server import serve
from tests.fakes.rag_serve import rag_serve
from tests.fakes.upstage_server import FakeUpstage, grounded_reply

EXAMPLE = Path(__file__).resolve().parents[2] / "eval" / "example"
QUESTIONS = EXAMPLE / "questions.jsonl"
DOCUMENTS = EXAMPLE / "documents"
KEY = "up-eval-key-0123456789"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in ("UPSTAGE_API_KEY", "UPSTAGE_SECRET_ID", "RAG_API_KEY", "VECTOR_STORE",
                 "EVAL_PRICE_INPUT_PER_MILLION", "EVAL_PRICE_OUTPUT_PER_MILLION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "unused"))
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "256")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


def test_in_process_on_the_example_set_then_compare(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    arguments = ["eval", str(QUESTIONS), "--index", str(DOCUMENTS), "--data-dir", str(tmp_path / "data")]
    assert main([*arguments, "--output", str(first)]) == 0
    out, err = capsys.readouterr()
    assert "in-process" in err and "indexed=7" in err
    assert "hybrid  hit@5" in out and "citation validity" in out and "latency query p95" in out

    report = _report(first)
    meta, summary = report["meta"], report["summary"]
    assert meta["target"]["in_process"] is True
    assert (meta["target"]["provider"], meta["target"]["vector_store"]) == ("offline", "local")
    assert meta["indexed"] == {"indexed": 7}
    assert (summary["questions"], summary["answerable"], summary["unanswerable"], summary["failed"]) == (
        28, 23, 5, 0)
    for mode in ("hybrid", "vector", "keyword"):
        figures = summary["retrieval"][mode]
        assert figures["n"] == 23
        # The offline provider is lexical: same-language questions find their document, and
        # most cross-language ones cannot (bench/results.md has the figures).
        assert 0.7 <= figures["hit@5"] < 1.0, (mode, figures)
        assert figures["hit@1"] <= figures["hit@3"] <= figures["hit@5"]
        assert figures["hit@1"] <= figures["mrr"] <= figures["hit@5"]
    answers = summary["answers"]
    assert answers["n"] == 28
    assert answers["citation_validity"]["value"] == 1.0
    assert answers["unanswerable_not_found"]["of"] == 5
    assert summary["tokens"]["total"] == 0 and summary["cost_usd"]["total"] == 0.0  # no model
    assert summary["latency_ms"]["query"]["n"] == 28
    records = {r["id"]: r for r in report["questions"]}
    assert records["ko-annual-leave"]["search"]["keyword"]["documents"][0] == "ko/leave-policy.md"
    assert records["ko-annual-leave"]["answer"]["facts_found"] == ["15일"]
    assert records["un-ceo-salary"]["search"]["hybrid"].keys() == {"documents", "latency_ms"}

    # The same documents again are unchanged; a second run gives the same retrieval figures.
    assert main([*arguments, "--output", str(second), "--modes", "hybrid,keyword"]) == 0
    assert "unchanged=7" in capsys.readouterr().err
    assert _report(second)["summary"]["retrieval"]["hybrid"] == summary["retrieval"]["hybrid"]

    assert main(["eval", "--compare", str(first), str(second)]) == 0
    compared = capsys.readouterr().out
    assert "first.json" in compared.splitlines()[0] and "second.json" in compared.splitlines()[0]
    hybrid_row = next(line for line in compared.splitlines() if line.startswith("hybrid  mrr"))
    assert hybrid_row.rstrip().endswith("=")
    vector_row = next(line for line in compared.splitlines() if line.startswith("vector  mrr"))
    assert "–" in vector_row  # not measured in the second run


def _scripted(messages: list[dict[str, Any]]) -> str:
    question = str(messages[-1]["content"])
    if "salary" in question or "airline" in question or "구내식당" in question:
        return NOT_FOUND_ANSWER
    return grounded_reply(messages)


def test_against_rag_serve_with_upstage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "report.json"
    with FakeUpstage(api_key=KEY, dimensions=256) as upstage:
        upstage.chat_script = _scripted
        env = {"UPSTAGE_API_KEY": KEY, "UPSTAGE_BASE_URL": upstage.base_url, "EMBEDDING_DIMENSIONS": "256",
               "UPSTAGE_MAX_RETRIES": "0", "UPSTAGE_TIMEOUT_SECONDS": "5",
               # Two runs embed ~120 questions: Upstage's 100/min would hold the second one.
               "UPSTAGE_REQUESTS_PER_MINUTE": "100000",
               "RAG_DATA_DIR": str(tmp_path / "served")}
        workdir = tmp_path / "serve"
        workdir.mkdir()
        with rag_serve(env, cwd=workdir) as url:
            assert main(["eval", str(QUESTIONS), "--url", url, "--index", str(DOCUMENTS),
                         "--modes", "hybrid", "--top-k", "3", "--output", str(output)]) == 0
            chats = len(upstage.chat_requests())
            # One failing question: Upstage refuses its answer (500, no retries in the service,
            # none in rag eval either); the run goes on and reports it.
            upstage.fail_next(500, endpoint="chat")
            failed_output = tmp_path / "failed.json"
            assert main(["eval", str(QUESTIONS), "--url", url, "--modes", "hybrid", "--retries", "0",
                         "--output", str(failed_output)]) == 1
    assert chats == 28

    report = _report(output)
    summary = report["summary"]
    assert report["meta"]["target"]["provider"] == "upstage"
    assert summary["failed"] == 0 and summary["retrieval"]["hybrid"]["k"] == 3
    answers = summary["answers"]
    assert answers["citation_validity"] == {"value": 1.0, "count": 25, "of": 25}
    assert answers["unanswerable_not_found"]["count"] == 3  # the three the script refuses
    assert answers["unanswerable_not_found"]["of"] == 5
    records = {r["id"]: r for r in report["questions"]}
    refused = records["un-ceo-salary"]["answer"]
    assert refused["not_found"] is True and refused["citations"] == [] and refused["citation_valid"] is None
    answered = records["en-incident-records"]["answer"]
    assert answered["model"] == "solar-pro3" and answered["markers"] == [1]
    assert answered["citation_valid"] is True and answered["cited_expected"] is True
    usage = answered["usage"]
    assert usage["prompt_tokens"] > 100 and usage["completion_tokens"] > 0
    assert answered["cost_usd"] == pytest.approx(
        (usage["prompt_tokens"] * 0.15 + usage["completion_tokens"] * 0.60) / 1e6)
    assert summary["tokens"]["prompt_mean"] > 100
    assert summary["cost_usd"]["total"] == pytest.approx(sum(r["answer"]["cost_usd"] for r in report["questions"]))

    failed = _report(failed_output)
    assert failed["summary"]["failed"] == 1
    [broken] = [r for r in failed["questions"] if r["failed"]]
    assert broken["id"] == "en-hotel-tokyo" and broken["answer"] is None
    assert broken["errors"][0]["request"] == "query" and broken["errors"][0]["status"] == 502
    assert "hybrid" in broken["search"]  # its retrieval was still measured
    assert failed["summary"]["answers"]["n"] == 27
    assert "en-hotel-tokyo (line 1): FAILED query: HTTP 502" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_url(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    assert main(["eval", str(QUESTIONS), "--url", url, "--retries", "1", "--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach {url}" in err and "rag serve" in err
    assert "Traceback" not in err


def test_refused_api_key_is_named_and_never_printed(capsys: pytest.CaptureFixture[str]) -> None:
    gateway = FastAPI()
    seen: list[str | None] = []

    @gateway.middleware("http")
    async def refuse(request: Request, call_next: Any) -> JSONResponse:
        seen.append(request.headers.get("x-api-key"))
        return JSONResponse({"message": "Forbidden"}, status_code=403)

    with serve(gateway) as url:
        assert main(["eval", str(QUESTIONS), "--url", url, "--api-key", "sk-wrong-key-42"]) == 2
    err = capsys.readouterr().err
    assert "refused the API key (HTTP 403)" in err and "--api-key" in err
    assert "sk-wrong-key-42" not in err
    assert seen == ["sk-wrong-key-42"]  # sent as x-api-key, once: a 403 is not retried


def test_bad_questions_file_and_bad_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question": "ok?", "expected_documents": ["a"]}\n{"question": "x"\n', encoding="utf-8")
    # Validated before anything is contacted: no service runs at this URL.
    assert main(["eval", str(bad), "--url", f"http://127.0.0.1:{_free_port()}"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: not valid JSON" in err

    assert main(["eval"]) == 2
    assert "needs a questions file" in capsys.readouterr().err
    assert main(["eval", "--compare", str(bad), str(bad)]) == 2
    assert "cannot read the report" in capsys.readouterr().err
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something-else"}', encoding="utf-8")
    assert main(["eval", "--compare", str(other), str(other)]) == 2
    assert "not a `rag eval --output` report" in capsys.readouterr().err
