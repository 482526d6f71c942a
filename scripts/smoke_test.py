#!/usr/bin/env python3
"""Post-deploy smoke test of a deployed stack, standard library only.

Reads the API URL and API key id (outputs `ApiUrl`, `ApiKeyId`) from `cdk deploy --outputs-file`,
fetches the key value with the AWS CLI (`aws apigateway get-api-key --include-value`), then:

  GET  /v1/health           → 200, status "ok"
  POST /v1/documents        → one uniquely worded document is indexed
  POST /v1/query            → the answer cites that document (retried: indexing is near real time)
  DELETE /v1/documents/{id} → the document is removed again

`--read-only` only checks health and that a query answers (for production).
Exit status 0 on success, 1 with a one-line reason on stderr otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT = 30.0  # API Gateway cuts requests at 29 s
AWS_CLI_TIMEOUT = 60.0
URL_OUTPUT = "ApiUrl"  # the CfnOutput names of infra_cdk/stack.py
KEY_ID_OUTPUT = "ApiKeyId"
CITATION_MARK_RE = re.compile(r"\[(\d+)\]")
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class SmokeTestError(Exception):
    """A check failed; the message says which and why."""


@dataclass(frozen=True)
class Target:
    url: str
    api_key_id: str


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    text: str


def load_outputs(path: Path) -> dict[str, dict[str, str]]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SmokeTestError(f"outputs file {path} not found (cdk deploy --outputs-file)") from exc
    except json.JSONDecodeError as exc:
        raise SmokeTestError(f"outputs file {path} is not JSON: {exc}") from exc
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise SmokeTestError(f"outputs file {path} is not {{stack: {{output: value}}}}")
    return {str(stack): {str(k): str(v) for k, v in outs.items()} for stack, outs in raw.items()}


def _pick(outputs: Mapping[str, Mapping[str, str]], name: str) -> str:
    found = [(stack, outs[name]) for stack, outs in outputs.items() if name in outs]
    if len(found) == 1:
        return found[0][1]
    if not found:
        available = ", ".join(f"{s}.{k}" for s, outs in outputs.items() for k in outs) or "none"
        raise SmokeTestError(f"no stack output named {name!r} (outputs: {available})")
    stacks = ", ".join(stack for stack, _ in found)
    raise SmokeTestError(f"output {name!r} appears in several stacks ({stacks}): deploy one stack")


def find_target(
    outputs: Mapping[str, Mapping[str, str]],
    url_output: str = URL_OUTPUT,
    key_id_output: str = KEY_ID_OUTPUT,
) -> Target:
    url = _pick(outputs, url_output)
    key_id = _pick(outputs, key_id_output)
    if not url.startswith(("https://", "http://")):
        raise SmokeTestError(f"output {url_output!r} is not a URL: {url!r}")
    if not key_id:
        raise SmokeTestError(f"output {key_id_output!r} is empty")
    return Target(url=url, api_key_id=key_id)


def fetch_api_key(key_id: str, aws_cli: str = "aws", timeout: float = AWS_CLI_TIMEOUT) -> str:
    command = [aws_cli, "apigateway", "get-api-key", "--api-key", key_id, "--include-value"]
    command += ["--query", "value", "--output", "text"]
    try:
        result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            command, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise SmokeTestError(f"AWS CLI {aws_cli!r} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise SmokeTestError(f"aws apigateway get-api-key took longer than {timeout:.0f}s") from exc
    if result.returncode != 0:
        reason = result.stderr.strip().splitlines()[-1:] or ["no error output"]
        raise SmokeTestError(f"aws apigateway get-api-key failed: {reason[0]}")
    value = result.stdout.strip()
    if not value or value == "None":
        raise SmokeTestError(f"API key {key_id} has no value (missing --include-value rights?)")
    return value


class ApiClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, *, auth: str = "x-api-key",
                accept: str = "application/json") -> Response:
        """``auth``: ``x-api-key``, ``bearer`` (``Authorization: Bearer``) or ``none``."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - the URL comes from our own stack outputs
            self.base_url + path, data=data, method=method
        )
        if auth == "x-api-key":
            request.add_header("x-api-key", self._api_key)
        elif auth == "bearer":
            request.add_header("authorization", f"Bearer {self._api_key}")
        request.add_header("accept", accept)
        if data is not None:
            request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                return _response(reply.status, reply.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return _response(exc.code, exc.read())
        except TimeoutError as exc:
            raise SmokeTestError(f"{method} {path}: no response within {self.timeout:.0f}s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise SmokeTestError(f"{method} {path}: no response within {self.timeout:.0f}s") from exc
            raise SmokeTestError(f"{method} {path}: cannot connect ({exc.reason})") from exc


def _response(status: int, raw: bytes) -> Response:
    text = raw.decode("utf-8", errors="replace")
    try:
        body = json.loads(text) if text else None
    except json.JSONDecodeError:
        body = None
    return Response(status=status, body=body, text=text)


def _expect(response: Response, status: int, what: str) -> Any:
    if response.status == status:
        return response.body
    detail = response.body.get("detail") if isinstance(response.body, dict) else None
    shown = detail if detail is not None else response.text[:300]
    hint = " (wrong or missing API key?)" if response.status in (401, 403) else ""
    if _placeholder_key(response):
        hint = (" -- the Upstage key secret still holds the stack's placeholder: store the key "
                "(aws secretsmanager put-secret-value --secret-id <UpstageSecretName output>) "
                "and re-run the job")
    raise SmokeTestError(f"{what}: HTTP {response.status}, expected {status}{hint}: {shown}")


def _placeholder_key(response: Response) -> bool:
    """The functions' 503 for a secret that still holds the placeholder (the first deploy)."""
    detail = response.body.get("detail") if isinstance(response.body, dict) else None
    return response.status == 503 and isinstance(detail, str) and "placeholder" in detail


def _log(message: str) -> None:
    print(message, flush=True)


def check_health(client: ApiClient, attempts: int = 5, delay: float = 3.0) -> dict[str, Any]:
    """Retries 5xx: the first request after a deployment may meet a cold or updating function."""
    for attempt in range(1, attempts + 1):
        response = client.request("GET", "/v1/health")
        if response.status not in RETRYABLE_STATUSES or attempt == attempts:
            break
        time.sleep(delay)
    body = _expect(response, 200, "GET /v1/health")
    if not isinstance(body, dict) or body.get("status") != "ok":
        raise SmokeTestError(f"GET /v1/health: status is not 'ok': {response.text[:300]}")
    _log(f"ok   GET /v1/health: provider={body.get('provider')} store={body.get('vector_store')}")
    return body


def index_document(client: ApiClient, doc_id: str, text: str, run_id: str) -> None:
    document = {
        "id": doc_id,
        "title": f"Smoke test {run_id}",
        "text": text,
        "content_type": "text/plain",
        "source": "smoke-test",
        "metadata": {"smoke_run": run_id},
    }
    body = _expect(
        client.request("POST", "/v1/documents", {"documents": [document]}), 200, "POST /v1/documents"
    )
    results = body.get("documents") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], dict):
        raise SmokeTestError(f"POST /v1/documents: unexpected answer {json.dumps(body)[:300]}")
    result = results[0]
    if result.get("id") != doc_id or result.get("status") not in {"indexed", "unchanged"}:
        raise SmokeTestError(f"POST /v1/documents: document not indexed: {json.dumps(result)}")
    if not isinstance(result.get("chunks"), int) or result["chunks"] < 1:
        raise SmokeTestError(f"POST /v1/documents: no chunks written: {json.dumps(result)}")
    _log(f"ok   POST /v1/documents: {doc_id} {result['status']} ({result['chunks']} chunks)")


def check_answer(body: Any, doc_id: str | None) -> str:
    """Validate a /v1/query answer; with doc_id, require a citation of that document."""
    if not isinstance(body, dict):
        raise SmokeTestError(f"POST /v1/query: answer is not an object: {json.dumps(body)[:300]}")
    answer, citations = body.get("answer"), body.get("citations")
    if not isinstance(answer, str) or not answer.strip():
        raise SmokeTestError("POST /v1/query: empty answer")
    if not isinstance(citations, list) or not all(isinstance(c, dict) for c in citations):
        raise SmokeTestError("POST /v1/query: 'citations' is not a list of objects")
    indexes = {c.get("index") for c in citations}
    dangling = sorted({int(n) for n in CITATION_MARK_RE.findall(answer)} - indexes)
    if dangling:
        raise SmokeTestError(f"POST /v1/query: answer cites {dangling} but no such citation exists")
    if doc_id is not None and not any(c.get("document_id") == doc_id for c in citations):
        cited = sorted({str(c.get("document_id")) for c in citations}) or ["nothing"]
        raise SmokeTestError(f"POST /v1/query: answer does not cite {doc_id} (cites {cited})")
    return answer


def check_query(
    client: ApiClient,
    question: str,
    doc_id: str | None,
    filters: dict[str, str] | None = None,
    attempts: int = 6,
    delay: float = 5.0,
) -> str:
    request: dict[str, Any] = {"query": question, "top_k": 5}
    if filters:
        request["filters"] = filters
    for attempt in range(1, attempts + 1):
        last = attempt == attempts
        response = client.request("POST", "/v1/query", request)
        if response.status in RETRYABLE_STATUSES and not last and not _placeholder_key(response):
            time.sleep(delay)
            continue
        body = _expect(response, 200, "POST /v1/query")  # other errors are not worth retrying
        try:
            answer = check_answer(body, doc_id)
        except SmokeTestError:
            if last:
                raise
            time.sleep(delay)  # the index may not have refreshed yet
            continue
        _log(f"ok   POST /v1/query: cited after {attempt} attempt(s): {answer[:120]!r}")
        return answer
    raise AssertionError("unreachable")  # pragma: no cover


def sse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.split("\n") if ": " in line)
        if "data" in fields:
            events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def check_streaming(client: ApiClient, question: str, doc_id: str, filters: dict[str, str]) -> None:
    """The routes served by the streaming function (Lambda Web Adapter, STREAM integration):
    a streamed /v1/query, the OpenAI-compatible endpoint with a bearer key, and the public
    playground page."""
    response = client.request("POST", "/v1/query", {"query": question, "filters": filters, "stream": True},
                              accept="text/event-stream")
    if response.status != 200:
        _expect(response, 200, "POST /v1/query (stream)")
    try:
        events = sse_events(response.text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise SmokeTestError(
            f"POST /v1/query (stream): not Server-Sent Events: {response.text[:300]}") from exc
    names = [name for name, _ in events]
    if not names or names[0] != "citations" or names[-1] != "done":
        raise SmokeTestError(f"POST /v1/query (stream): events {names[:5]}...{names[-2:]}")
    answer = check_answer(events[-1][1], doc_id)
    _log(f"ok   POST /v1/query (stream): {len(names)} events: {answer[:80]!r}")

    body = _expect(client.request("POST", "/v1/chat/completions", {
        "model": "solar-rag", "messages": [{"role": "user", "content": question}], "filters": filters,
    }, auth="bearer"), 200, "POST /v1/chat/completions (Authorization: Bearer)")
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise SmokeTestError(
            f"POST /v1/chat/completions: not a completion: {json.dumps(body)[:300]}") from exc
    check_answer({"answer": content, "citations": body.get("citations")}, doc_id)
    _log("ok   POST /v1/chat/completions with a bearer key: cited")

    page = client.request("GET", "/playground", auth="none", accept="text/html")
    if page.status != 200 or "Solar RAG playground" not in page.text:
        raise SmokeTestError(f"GET /playground without a key: HTTP {page.status}: {page.text[:200]}")
    _log("ok   GET /playground without a key")


def delete_document(client: ApiClient, doc_id: str) -> None:
    path = "/v1/documents/" + urllib.parse.quote(doc_id, safe="")
    response = client.request("DELETE", path)
    if response.status not in {204, 404}:
        _expect(response, 204, f"DELETE {path}")
    _log(f"ok   DELETE {path}: {response.status}")


def run(
    client: ApiClient,
    run_id: str,
    read_only: bool = False,
    query_attempts: int = 6,
    retry_delay: float = 5.0,
    streaming: bool = False,
) -> None:
    check_health(client, delay=retry_delay)
    if read_only:
        check_query(client, "What does this service do?", None, attempts=query_attempts, delay=retry_delay)
        return
    codeword = secrets.token_hex(6)
    doc_id = f"smoke-test-{run_id}"
    text = (
        f"Smoke test {run_id} checks a fresh deployment. "
        f"The deployment codeword of smoke test {run_id} is {codeword}."
    )
    index_document(client, doc_id, text, run_id)
    try:
        check_query(
            client,
            f"What is the deployment codeword of smoke test {run_id}?",
            doc_id,
            filters={"smoke_run": run_id},
            attempts=query_attempts,
            delay=retry_delay,
        )
        if streaming:
            check_streaming(client, f"What is the deployment codeword of smoke test {run_id}?",
                            doc_id, {"smoke_run": run_id})
    except SmokeTestError:
        try:  # still remove the test document; report the original failure
            delete_document(client, doc_id)
        except SmokeTestError as cleanup:
            _log(f"warn cleanup failed too: {cleanup}")
        raise
    delete_document(client, doc_id)


def _default_run_id() -> str:
    run, attempt = os.environ.get("GITHUB_RUN_ID"), os.environ.get("GITHUB_RUN_ATTEMPT", "1")
    return f"{run}-{attempt}" if run else secrets.token_hex(6)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--outputs-file", type=Path, default=Path("cdk-outputs.json"))
    parser.add_argument("--url-output", default=URL_OUTPUT, help="name of the API URL output")
    parser.add_argument("--api-key-id-output", default=KEY_ID_OUTPUT, help="name of the API key id output")
    parser.add_argument("--aws-cli", default="aws", help="AWS CLI executable")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="per request, seconds")
    parser.add_argument("--query-attempts", type=int, default=6)
    parser.add_argument("--retry-delay", type=float, default=5.0, help="seconds between retries")
    parser.add_argument("--run-id", default=None, help="default: GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT")
    parser.add_argument("--read-only", action="store_true", help="health and one query only")
    parser.add_argument("--streaming", action="store_true",
                        help="also a streamed query, /v1/chat/completions with a bearer key, "
                             "the playground")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target = find_target(load_outputs(args.outputs_file), args.url_output, args.api_key_id_output)
        # SMOKE_API_KEY lets a developer run this against a stack without AWS credentials.
        api_key = os.environ.get("SMOKE_API_KEY") or fetch_api_key(target.api_key_id, args.aws_cli)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            print(f"::add-mask::{api_key}", flush=True)
        _log(f"smoke test of {target.url}")
        client = ApiClient(target.url, api_key, timeout=args.timeout)
        run(
            client,
            args.run_id or _default_run_id(),
            read_only=args.read_only,
            streaming=args.streaming,
            query_attempts=args.query_attempts,
            retry_delay=args.retry_delay,
        )
    except SmokeTestError as exc:
        print(f"smoke test FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    _log("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
