"""scripts/smoke_test.py against a fake RAG API on 127.0.0.1."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from scripts import smoke_test as st

API_KEY = "test-key-value"


@dataclass
class FakeRag:
    """Behaviour knobs for the fake API; `log` records (method, path, api key)."""

    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    health_statuses: list[int] = field(default_factory=list)  # consumed first, then 200
    query_misses: int = 0  # queries that find nothing before the index "refreshes"
    cite: bool = True
    extra_marker: str = ""
    delay: float = 0.0
    delete_status: int = 204
    query_statuses: list[int] = field(default_factory=list)  # consumed first, then answers
    query_error: str = "query failed"  # the detail of those answers


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any = None) -> None:
        raw = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _start(self) -> FakeRag | None:
        rag = self.server.rag
        rag.log.append((self.command, self.path, self.headers.get("x-api-key")))
        time.sleep(rag.delay)
        if self.headers.get("x-api-key") != API_KEY:
            self._send(403, {"message": "Forbidden"})
            return None
        return rag

    def _json(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers["content-length"])))

    def do_GET(self) -> None:
        rag = self._start()
        if rag is None:
            return
        if self.path != "/prod/v1/health":
            self._send(404, {"detail": "not found"})
        elif rag.health_statuses:
            self._send(rag.health_statuses.pop(0), {"detail": "upstream error"})
        else:
            self._send(200, {"status": "ok", "provider": "offline", "vector_store": "local"})

    def do_POST(self) -> None:
        rag = self._start()
        if rag is None:
            return
        body = self._json()
        if self.path == "/prod/v1/documents":
            results = []
            for doc in body["documents"]:
                rag.documents[doc["id"]] = doc
                results.append({"id": doc["id"], "status": "indexed", "chunks": 1})
            self._send(200, {"documents": results})
        elif self.path == "/prod/v1/query" and rag.query_statuses:
            self._send(rag.query_statuses.pop(0), {"detail": rag.query_error})
        elif self.path == "/prod/v1/query":
            filters = body.get("filters") or {}
            hits = [
                d
                for d in rag.documents.values()
                if all(d.get("metadata", {}).get(k) == v for k, v in filters.items())
            ]
            if rag.query_misses > 0:
                rag.query_misses -= 1
                hits = []
            if not hits or not rag.cite:
                self._send(200, {"answer": "I found nothing relevant.", "citations": []})
                return
            citations = [
                {"index": i, "document_id": d["id"], "chunk_id": f"{d['id']}#0", "text": d["text"]}
                for i, d in enumerate(hits, start=1)
            ]
            self._send(200, {"answer": f"The codeword is in [1].{rag.extra_marker}", "citations": citations})
        else:
            self._send(404, {"detail": "not found"})

    def do_DELETE(self) -> None:
        rag = self._start()
        if rag is None:
            return
        doc_id = unquote(self.path.removeprefix("/prod/v1/documents/"))
        if rag.delete_status != 204:
            self._send(rag.delete_status, {"detail": "boom"})
        elif rag.documents.pop(doc_id, None) is None:
            self._send(404, {"detail": "unknown document"})
        else:
            self._send(204)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rag: FakeRag) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rag = rag

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the timeout test hangs up before the reply (BrokenPipeError)


@pytest.fixture
def rag() -> FakeRag:
    return FakeRag()


@pytest.fixture
def base_url(rag: FakeRag) -> Iterator[str]:
    server = _Server(rag)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/prod/"
    server.shutdown()
    server.server_close()


def _client(base_url: str, key: str = API_KEY, timeout: float = 5.0) -> st.ApiClient:
    return st.ApiClient(base_url, key, timeout=timeout)


def _outputs(path: Path, url: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "SolarRag-dev": {
                    "ApiUrl": url,
                    "ApiKeyId": "abc123",
                    "DocumentsBucketName": "bucket",
                }
            }
        )
    )
    return path


# --- outputs parsing ---------------------------------------------------------------------


def test_reads_the_stack_outputs_by_name() -> None:
    outputs = {
        "Other": {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q"},
        "SolarRag-dev": {
            "ApiUrl": "https://x.execute-api.eu-west-1.amazonaws.com/dev/",
            "ApiKeyId": "k1",
            "RagApiEndpoint1234": "https://x.execute-api.eu-west-1.amazonaws.com/dev/",
            "OpenSearchEndpoint": "https://search-x.eu-west-1.es.amazonaws.com",
        },
    }
    assert st.find_target(outputs) == st.Target(
        url="https://x.execute-api.eu-west-1.amazonaws.com/dev/", api_key_id="k1"
    )


def test_other_output_names_can_be_chosen() -> None:
    outputs = {"A": {"Url1": "https://a/", "Url2": "https://b/", "Key": "k"}}
    assert st.find_target(outputs, "Url2", "Key") == st.Target("https://b/", "k")


def test_outputs_in_several_stacks_are_ambiguous() -> None:
    outputs = {"A": {"ApiUrl": "https://a/", "ApiKeyId": "k"}, "B": {"ApiUrl": "https://b/"}}
    with pytest.raises(st.SmokeTestError, match=r"'ApiUrl' appears in several stacks \(A, B\)"):
        st.find_target(outputs)


def test_missing_key_id_output_lists_what_exists() -> None:
    with pytest.raises(st.SmokeTestError, match=r"no stack output named 'ApiKeyId' \(outputs: A.ApiUrl\)"):
        st.find_target({"A": {"ApiUrl": "https://a/"}})


def test_url_output_must_be_a_url() -> None:
    with pytest.raises(st.SmokeTestError, match="'ApiUrl' is not a URL"):
        st.find_target({"A": {"ApiUrl": "x.example", "ApiKeyId": "k"}})


def test_unusable_outputs_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(st.SmokeTestError, match="not found"):
        st.load_outputs(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(st.SmokeTestError, match="is not JSON"):
        st.load_outputs(bad)
    bad.write_text('["a"]')
    with pytest.raises(st.SmokeTestError, match="stack"):
        st.load_outputs(bad)


# --- answer checks -----------------------------------------------------------------------


def test_answer_must_cite_the_document() -> None:
    body = {"answer": "It is [1].", "citations": [{"index": 1, "document_id": "other"}]}
    with pytest.raises(st.SmokeTestError, match=r"does not cite doc-1 \(cites \['other'\]\)"):
        st.check_answer(body, "doc-1")
    assert st.check_answer(body, None) == "It is [1]."


def test_answer_markers_must_point_to_citations() -> None:
    body = {"answer": "See [1] and [3].", "citations": [{"index": 1, "document_id": "d"}]}
    with pytest.raises(st.SmokeTestError, match=r"cites \[3\] but no such citation"):
        st.check_answer(body, "d")


@pytest.mark.parametrize(
    "body",
    [None, [], {"answer": "", "citations": []}, {"answer": "x", "citations": None}],
)
def test_malformed_answers_are_rejected(body: Any) -> None:
    with pytest.raises(st.SmokeTestError, match="POST /v1/query"):
        st.check_answer(body, None)


# --- against the fake API ----------------------------------------------------------------


def test_full_run_indexes_queries_and_cleans_up(rag: FakeRag, base_url: str) -> None:
    rag.query_misses = 1  # first query before the index refresh
    st.run(_client(base_url), "42-1", query_attempts=3, retry_delay=0.0)
    assert [(m, p) for m, p, _ in rag.log] == [
        ("GET", "/prod/v1/health"),
        ("POST", "/prod/v1/documents"),
        ("POST", "/prod/v1/query"),
        ("POST", "/prod/v1/query"),
        ("DELETE", "/prod/v1/documents/smoke-test-42-1"),
    ]
    assert {key for _, _, key in rag.log} == {API_KEY}
    assert rag.documents == {}


def test_uncited_document_fails_after_retries_and_still_cleans_up(rag: FakeRag, base_url: str) -> None:
    rag.cite = False
    with pytest.raises(st.SmokeTestError, match="does not cite smoke-test-7"):
        st.run(_client(base_url), "7", query_attempts=2, retry_delay=0.0)
    assert [m for m, _, _ in rag.log].count("POST") == 3
    assert rag.log[-1][0] == "DELETE"
    assert rag.documents == {}


def test_query_retries_transient_errors_only(rag: FakeRag, base_url: str) -> None:
    rag.query_statuses = [503]
    st.run(_client(base_url), "10", query_attempts=2, retry_delay=0.0)
    rag.query_statuses = [422]
    rag.log.clear()
    with pytest.raises(st.SmokeTestError, match="POST /v1/query: HTTP 422, expected 200: query failed"):
        st.run(_client(base_url), "11", query_attempts=3, retry_delay=0.0)
    assert [p for _, p, _ in rag.log].count("/prod/v1/query") == 1


def test_placeholder_key_is_reported_plainly_and_not_retried(rag: FakeRag, base_url: str) -> None:
    """The first deploy: the stack's secret holds a placeholder until the key is stored."""
    rag.query_statuses = [503, 503, 503]
    rag.query_error = ("the secret 'solar-rag-dev/upstage-api-key' (UPSTAGE_SECRET_ID) still holds "
                       "the placeholder the stack created: set the Upstage key with ...")
    with pytest.raises(st.SmokeTestError, match=r"HTTP 503, expected 200 -- the Upstage key secret "
                       r"still holds the stack's placeholder: store the key \(aws secretsmanager"):
        st.check_query(_client(base_url), "anything", None, attempts=3, delay=0.0)
    assert [p for _, p, _ in rag.log].count("/prod/v1/query") == 1


def test_dangling_citation_marker_fails(rag: FakeRag, base_url: str) -> None:
    rag.extra_marker = " Also [2]."
    with pytest.raises(st.SmokeTestError, match=r"cites \[2\]"):
        st.run(_client(base_url), "8", query_attempts=1, retry_delay=0.0)


def test_failed_cleanup_is_reported(rag: FakeRag, base_url: str) -> None:
    rag.delete_status = 500
    with pytest.raises(st.SmokeTestError, match=r"DELETE /v1/documents/smoke-test-9: HTTP 500.*boom"):
        st.run(_client(base_url), "9", query_attempts=1, retry_delay=0.0)


def test_health_retries_transient_errors(rag: FakeRag, base_url: str) -> None:
    rag.health_statuses = [502, 503]
    assert st.check_health(_client(base_url), attempts=3, delay=0.0)["status"] == "ok"


def test_health_gives_up_with_status_and_detail(rag: FakeRag, base_url: str) -> None:
    rag.health_statuses = [502, 502]
    with pytest.raises(st.SmokeTestError, match=r"GET /v1/health: HTTP 502, expected 200: upstream error"):
        st.check_health(_client(base_url), attempts=2, delay=0.0)


def test_wrong_api_key_is_explained(base_url: str) -> None:
    with pytest.raises(st.SmokeTestError, match=r"HTTP 403.*wrong or missing API key"):
        st.check_health(_client(base_url, key="wrong"), attempts=1)


def test_slow_server_hits_the_timeout(rag: FakeRag, base_url: str) -> None:
    rag.delay = 1.0
    started = time.monotonic()
    with pytest.raises(st.SmokeTestError, match="no response within"):
        _client(base_url, timeout=0.2).request("GET", "/v1/health")
    assert time.monotonic() - started < 0.9


def test_unreachable_api_fails_clearly() -> None:
    server = _Server(FakeRag())
    port = server.server_address[1]
    server.server_close()
    with pytest.raises(st.SmokeTestError, match="GET /v1/health: cannot connect"):
        _client(f"http://127.0.0.1:{port}/").request("GET", "/v1/health")


def test_read_only_mode_writes_nothing(rag: FakeRag, base_url: str) -> None:
    st.run(_client(base_url), "ro", read_only=True, query_attempts=1, retry_delay=0.0)
    assert [(m, p) for m, p, _ in rag.log] == [("GET", "/prod/v1/health"), ("POST", "/prod/v1/query")]


# --- AWS CLI and entry point -------------------------------------------------------------


def _fake_aws(tmp_path: Path, script: str) -> str:
    path = tmp_path / "aws"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_fetch_api_key_passes_include_value(tmp_path: Path) -> None:
    aws = _fake_aws(tmp_path, 'echo "$@" > "$(dirname "$0")/args"; echo " secret-value "')
    assert st.fetch_api_key("abc123", aws_cli=aws) == "secret-value"
    args = (tmp_path / "args").read_text().split()
    assert args[:4] == ["apigateway", "get-api-key", "--api-key", "abc123"]
    assert "--include-value" in args


def test_fetch_api_key_reports_cli_errors(tmp_path: Path) -> None:
    aws = _fake_aws(tmp_path, 'echo "An error occurred (AccessDenied)" >&2; exit 254')
    with pytest.raises(st.SmokeTestError, match=r"get-api-key failed: .*AccessDenied"):
        st.fetch_api_key("abc123", aws_cli=aws)
    with pytest.raises(st.SmokeTestError, match="not found"):
        st.fetch_api_key("abc123", aws_cli=str(tmp_path / "no-such-aws"))


def test_fetch_api_key_times_out(tmp_path: Path) -> None:
    aws = _fake_aws(tmp_path, "exec sleep 5")
    with pytest.raises(st.SmokeTestError, match="longer than"):
        st.fetch_api_key("abc123", aws_cli=aws, timeout=0.3)


def test_main_end_to_end_with_aws_cli(
    rag: FakeRag,
    base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SMOKE_API_KEY", raising=False)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    aws = _fake_aws(tmp_path, f"echo {API_KEY}")
    outputs = _outputs(tmp_path / "cdk-outputs.json", base_url)
    argv = ["--outputs-file", str(outputs), "--aws-cli", aws]
    assert st.main([*argv, "--run-id", "77", "--retry-delay", "0"]) == 0
    out = capsys.readouterr().out
    assert f"::add-mask::{API_KEY}" in out
    assert "smoke test passed" in out
    assert rag.documents == {}


def test_main_reports_failure_in_one_line(
    rag: FakeRag,
    base_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SMOKE_API_KEY", "sk-not-the-right-one")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    outputs = _outputs(tmp_path / "cdk-outputs.json", base_url)
    argv = ["--outputs-file", str(outputs), "--retry-delay", "0"]
    assert st.main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("smoke test FAILED: GET /v1/health: HTTP 403")
    assert "sk-not-the-right-one" not in captured.out + captured.err
    assert rag.log and rag.log[0][2] == "sk-not-the-right-one"
