"""A fake Upstage (OpenAI-compatible) API on 127.0.0.1 for tests and benchmarks.

The openai SDK 3.x has its own HTTP stack (``respx`` cannot intercept it), so tests talk to
this real HTTP server through ``base_url``. It answers ``POST /v1/chat/completions`` and
``POST /v1/embeddings`` with bodies shaped like Upstage's, and adds what tests need:
request recording, an API-key check, meaningful deterministic embeddings (the offline
hashing embedder, so retrieval really works), a grounded default chat reply, scripted and
random faults, latency, and RPM/TPM enforcement with 429 + Retry-After.

Token estimate (usage fields and TPM enforcement): ``ceil(len(text) / 4)`` characters per
token, at least 1 per input. It is deliberately no larger than any conservative client-side
estimate, so a client throttling itself with the same limits should never see a 429.

Usage::

    with FakeUpstage(api_key="test-key") as fake:
        client = OpenAI(api_key="test-key", base_url=fake.base_url)
        fake.fail_next(429, headers={"Retry-After": "0.2"})
        ...
        assert len(fake.embedding_requests()) == 2
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self

from solar_rag.adapters.offline_embedder import HashingEmbedder

from tests.fakes.document_parse_fake import FakeDocumentParse

Endpoint = Literal["chat", "embeddings"]
ChatScript = Callable[[list[dict[str, Any]]], str] | deque[str]
FaultKind = Literal["status", "timeout", "drop"]

_PATHS: dict[str, Endpoint] = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
}
_MAX_BODY_BYTES = 32 * 1024 * 1024


def estimate_tokens(text: str) -> int:
    """The fake's documented token estimate: four characters per token, at least one."""
    return max(1, math.ceil(len(text) / 4))


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: Any
    """Parsed JSON body, or ``None`` when it was not valid JSON."""
    received_at: float
    status: int | None = None
    """Status answered (``None`` while pending or when the connection was dropped)."""
    fault: str | None = None
    """The injected fault, if any: ``"status:429"``, ``"timeout"``, ``"drop"``, ``"rate_limit"``."""

    @property
    def endpoint(self) -> Endpoint | None:
        return _PATHS.get(self.path)

    @property
    def model(self) -> str | None:
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None

    @property
    def inputs(self) -> list[str]:
        """Embedding inputs as a list (a single string input becomes a one-item list)."""
        value = self.body.get("input") if isinstance(self.body, dict) else None
        if isinstance(value, str):
            return [value]
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour for the next matching request.

    ``kind="status"`` answers ``status`` with ``headers`` and ``body`` (default: an OpenAI
    error envelope); ``"timeout"`` waits ``delay`` seconds before answering normally (set it
    above the client timeout); ``"drop"`` closes the connection without an answer.
    ``endpoint`` restricts the fault to chat or embeddings requests.
    """

    kind: FaultKind = "status"
    status: int = 500
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    endpoint: Endpoint | None = None


class _Window:
    """Sliding window of admitted requests for RPM/TPM enforcement."""

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.tokens = 0

    def admit(self, now: float, tokens: int, rpm: int | None, tpm: int | None,
              window: float) -> float:
        """Records the request and returns 0.0, or returns the seconds to wait."""
        while self.entries and self.entries[0][0] <= now - window:
            self.tokens -= self.entries.popleft()[1]
        waits = [0.0]
        if rpm is not None and len(self.entries) >= rpm:
            waits.append(self.entries[len(self.entries) - rpm][0] + window - now)
        if tpm is not None and self.entries and self.tokens + tokens > tpm:
            remaining = self.tokens
            for stamp, cost in self.entries:
                remaining -= cost
                if remaining == 0 or remaining + tokens <= tpm:
                    waits.append(stamp + window - now)
                    break
        wait = max(waits)
        if wait <= 0.0:
            self.entries.append((now, tokens))
            self.tokens += tokens
        return wait


class FakeUpstage:
    """A threaded HTTP server imitating Upstage's OpenAI-compatible API."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        dimensions: int = 1024,
        latency: float = 0.0,
        rpm: int | None = None,
        tpm: int | None = None,
        time_scale: float = 1.0,
        echo_key_in_errors: bool = True,
    ) -> None:
        self.api_key = api_key
        """When set, requests need ``Authorization: Bearer <api_key>`` (else 401)."""
        self.dimensions = dimensions
        self.wrong_dimensions: int | None = None
        """When set, embeddings have this many floats instead of ``dimensions``."""
        self.vector_scale = 1.0
        """Multiplies every returned vector (Upstage does not document normalisation)."""
        self.shuffle_embeddings = False
        """Return ``data`` in reverse order (each item keeps its ``index``)."""
        self.model_suffix = ""
        """Appended to the requested model in answers, like a dated snapshot name."""
        self.latency = latency
        self.rpm = rpm
        self.tpm = tpm
        self.time_scale = time_scale
        """Scales the 60-s rate-limit window (0.01 makes a "minute" last 0.6 s)."""
        self.send_retry_after = True
        self.echo_key_in_errors = echo_key_in_errors
        """401 messages echo the presented key (worst case for clients that log errors)."""
        self.chat_script: ChatScript | None = None
        """A callable ``(messages) -> content`` or a deque of contents (used first-in first-out,
        then the default reply)."""
        self.timeout_delay = 2.0
        """Delay of random ``timeout`` faults; keep it above the client timeout."""
        self.chaos_retry_after = 0.05
        self.stream_token_delay = 0.0
        """Seconds between the content chunks of a streamed chat answer (one word per chunk)."""
        self.stream_break_after: int | None = None
        """When set, streamed answers stop after this many content chunks: the connection is
        closed without ``finish_reason`` or ``[DONE]`` (a stream broken off upstream)."""
        self.ignore_include_usage = False
        """Send no usage chunk even when asked (Upstage does not document ``include_usage``)."""

        self.document_parse = FakeDocumentParse(lambda: self.base_url, lambda: self.api_key)
        """Document Parse (``/v1/document-digitization``): see ``document_parse_fake``."""

        self.requests: list[RecordedRequest] = []
        self.faults: deque[Fault] = deque()
        self.faults_injected = 0
        self.rate_limited = 0
        self._chaos_rate = 0.0
        self._chaos_kinds: tuple[str, ...] = ()
        self._rng = random.Random(0)
        self._lock = threading.Lock()
        self._windows: dict[Endpoint, _Window] = {"chat": _Window(), "embeddings": _Window()}
        self._embedders: dict[int, HashingEmbedder] = {}
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-upstage", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in delays
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeUpstage is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- test controls ---------------------------------------------------------------------

    def fail_next(self, status: int = 500, *, times: int = 1,
                  headers: Mapping[str, str] | None = None, body: Any = None,
                  message: str | None = None, endpoint: Endpoint | None = None) -> None:
        """The next ``times`` matching requests get ``status`` (with an error envelope)."""
        if body is None and message is not None:
            body = _error_body(message, status)
        for _ in range(times):
            self.add_fault(Fault("status", status, dict(headers or {}), body, 0.0, endpoint))

    def delay_next(self, seconds: float, *, times: int = 1,
                   endpoint: Endpoint | None = None) -> None:
        """The next requests are answered after ``seconds`` (a timeout if above the client's)."""
        for _ in range(times):
            self.add_fault(Fault("timeout", delay=seconds, endpoint=endpoint))

    def drop_next(self, *, times: int = 1, endpoint: Endpoint | None = None) -> None:
        for _ in range(times):
            self.add_fault(Fault("drop", endpoint=endpoint))

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def chaos(self, rate: float, *, seed: int = 0,
              kinds: Sequence[str] = ("429", "500", "timeout")) -> None:
        """Inject a random fault into a ``rate`` share of requests (seeded; 0 turns it off).

        ``kinds``: any of ``"429"``, ``"500"``, ``"503"``, ``"timeout"``, ``"drop"``.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        with self._lock:
            self._chaos_rate = rate
            self._chaos_kinds = tuple(kinds)
            self._rng = random.Random(seed)

    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.snapshot() if r.endpoint == "embeddings"]

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.snapshot() if r.endpoint == "chat"]

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    def reset(self) -> None:
        """Forget requests, faults, counters and rate-limit windows (settings stay)."""
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.faults_injected = 0
            self.rate_limited = 0
            self._chaos_rate = 0.0
            self._windows = {"chat": _Window(), "embeddings": _Window()}

    # -- request handling (called from handler threads) -------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_fault(self, endpoint: Endpoint) -> Fault | None:
        with self._lock:
            for position, fault in enumerate(self.faults):
                if fault.endpoint in (None, endpoint):
                    del self.faults[position]
                    self.faults_injected += 1
                    return fault
            if self._chaos_rate and self._rng.random() < self._chaos_rate:
                kind = self._rng.choice(self._chaos_kinds)
                self.faults_injected += 1
                return _chaos_fault(kind, self.timeout_delay, self.chaos_retry_after)
        return None

    def _rate_limit_wait(self, endpoint: Endpoint, tokens: int) -> float:
        if self.rpm is None and self.tpm is None:
            return 0.0
        with self._lock:
            wait = self._windows[endpoint].admit(
                time.monotonic(), tokens, self.rpm, self.tpm, 60.0 * self.time_scale
            )
            if wait > 0:
                self.rate_limited += 1
            return wait

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _embedder(self, dimensions: int) -> HashingEmbedder:
        with self._lock:
            embedder = self._embedders.get(dimensions)
            if embedder is None:
                embedder = self._embedders[dimensions] = HashingEmbedder(dimensions)
            return embedder

    def _chat_content(self, messages: list[dict[str, Any]]) -> str:
        script = self.chat_script
        if callable(script):
            return script(messages)
        if isinstance(script, deque):
            try:
                return script.popleft()
            except IndexError:
                pass
        return grounded_reply(messages)


# -- answers ---------------------------------------------------------------------------------

_SOURCE_ONE = re.compile(r"(?m)^[^\S\n]*(?:source\s*)?\[1\][:.)]?[^\S\n]*")
_NEXT_SOURCE = re.compile(r"(?m)^[^\S\n]*(?:source\s*)?\[\d+\]|</sources>")
_LABEL_LINE = re.compile(r"^\(.*\)$")
_SENTENCE_END = re.compile(r"(?<=[.!?。])\s|\n")


def grounded_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The default deterministic answer.

    If a message (the last user message first) holds numbered sources (``[1] ...`` at the
    start of a line), the first sentence of source 1 followed by `` [1]``; otherwise
    ``FAKE: <last user message, truncated>``.
    """
    contents = [str(m.get("content", "")) for m in messages]
    users = [str(m.get("content", "")) for m in messages if m.get("role") == "user"]
    for text in [*reversed(users), *contents]:
        match = _SOURCE_ONE.search(text)
        if match is None:
            continue
        rest = text[match.end():]
        following = _NEXT_SOURCE.search(rest)
        block = rest[: following.start()] if following else rest
        lines = [line.strip() for line in block.strip().splitlines()]
        if lines and _LABEL_LINE.match(lines[0]) and len(lines) > 1:
            lines = lines[1:]  # "[1] (title / section)" header line
        body = " ".join(line for line in lines if line)
        sentence = _SENTENCE_END.split(body, maxsplit=1)[0].strip()
        if sentence:
            return f"{sentence} [1]"
    last = users[-1] if users else (contents[-1] if contents else "")
    last = " ".join(last.split())
    return "FAKE: " + (last if len(last) <= 80 else last[:77] + "...")


def _error_body(message: str, status: int, code: str | None = None) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "invalid_request_error",
             404: "invalid_request_error", 429: "rate_limit_error"}
    return {"error": {"message": message, "type": kinds.get(status, "server_error"),
                      "param": None, "code": code}}


def _chaos_fault(kind: str, timeout_delay: float, retry_after: float) -> Fault:
    if kind == "timeout":
        return Fault("timeout", delay=timeout_delay)
    if kind == "drop":
        return Fault("drop")
    status = int(kind)
    headers = {"retry-after-ms": str(int(retry_after * 1000))} if status == 429 else {}
    return Fault("status", status, headers)


class _Reply:
    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None,
                 stream: Iterable[bytes] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.stream = stream


def _handler_for(fake: FakeUpstage) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeUpstage/1.0"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add ~40 ms to every response.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default stderr access log."""

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def _serve(self, method: str) -> None:
            try:
                self._handle(method)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                self.close_connection = True  # client went away (e.g. it timed out)
            except Exception as exc:  # never let a bug kill the connection silently
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self._send(_Reply(500, _error_body(f"fake server error: {exc!r}", 500)))

        def _handle(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            raw, body = self._read_body()
            record = RecordedRequest(
                method, path, {k.lower(): v for k, v in self.headers.items()}, body,
                time.monotonic(),
            )
            fake._record(record)
            reply = self._answer(method, path, raw, body, record)
            if reply is None:  # dropped connection
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            record.status = reply.status
            self._send(reply)

        def _read_body(self) -> tuple[bytes, Any]:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if length < 0 or length > _MAX_BODY_BYTES:
                self.close_connection = True
                return b"", None
            raw = self.rfile.read(length) if length else b""
            try:
                return raw, json.loads(raw) if raw else None
            except (ValueError, UnicodeDecodeError):
                return raw, None

        def _answer(self, method: str, path: str, raw: bytes, body: Any,
                    record: RecordedRequest) -> _Reply | None:
            if path.startswith("/v1/document-digitization"):
                status, reply, headers = fake.document_parse.answer(
                    method, path, {k.lower(): v for k, v in self.headers.items()}, raw)
                return _Reply(status, reply, headers)
            endpoint = _PATHS.get(path)
            if endpoint is None:
                return _Reply(404, _error_body(f"Unknown path {path}", 404, "not_found"))
            if method != "POST":
                return _Reply(405, _error_body(f"Method {method} not allowed", 405))
            if fake.api_key is not None:
                presented = self.headers.get("Authorization", "")
                if presented != f"Bearer {fake.api_key}":
                    shown = presented.removeprefix("Bearer ") if fake.echo_key_in_errors else "***"
                    return _Reply(401, _error_body(
                        f"Incorrect API key provided: {shown}", 401, "invalid_api_key"))
            fake._sleep(fake.latency)

            fault = fake._next_fault(endpoint)
            if fault is not None:
                if fault.kind == "drop":
                    record.fault = "drop"
                    return None
                if fault.kind == "timeout":
                    record.fault = "timeout"
                    fake._sleep(fault.delay)
                else:
                    record.fault = f"status:{fault.status}"
                    fault_body = fault.body if fault.body is not None else _error_body(
                        f"Injected fault {fault.status}", fault.status)
                    return _Reply(fault.status, fault_body, fault.headers)

            if not isinstance(body, dict):
                return _Reply(400, _error_body(
                    "We could not parse the JSON body of your request.", 400,
                    "invalid_request_body"))
            try:
                if endpoint == "embeddings":
                    inputs, tokens = _embedding_inputs(body)
                else:
                    messages, tokens = _chat_messages(body)
            except _BadRequest as exc:
                return _Reply(400, _error_body(str(exc), 400, exc.code))

            wait = fake._rate_limit_wait(endpoint, tokens)
            if wait > 0:
                record.fault = "rate_limit"
                headers = {}
                if fake.send_retry_after:
                    headers = {"retry-after": str(max(1, math.ceil(wait))),
                               "retry-after-ms": str(max(1, math.ceil(wait * 1000)))}
                return _Reply(429, _error_body(
                    "Too many requests. Please try again later.", 429, "rate_limit_exceeded"),
                    headers)
            if endpoint == "embeddings":
                return _embeddings_reply(fake, body, inputs, tokens)
            return _chat_reply(fake, body, messages, tokens)

        def _send(self, reply: _Reply) -> None:
            if reply.stream is not None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("x-request-id", f"req-fake-{next(fake._ids)}")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                for piece in reply.stream:
                    self.wfile.write(piece)
                    self.wfile.flush()
                return
            payload = json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-request-id", f"req-fake-{next(fake._ids)}")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

    return Handler


class _BadRequest(Exception):
    def __init__(self, message: str, code: str = "invalid_request_body") -> None:
        super().__init__(message)
        self.code = code


def _require_model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("'model' is required")
    return model


def _embedding_inputs(body: Mapping[str, Any]) -> tuple[list[str], int]:
    _require_model(body)
    value = body.get("input")
    inputs = [value] if isinstance(value, str) else value
    if not isinstance(inputs, list) or not inputs:
        raise _BadRequest("'input' must be a non-empty string or array of strings")
    for position, item in enumerate(inputs):
        if not isinstance(item, str):
            raise _BadRequest(f"input[{position}] must be a string")
        if not item:
            raise _BadRequest(f"input[{position}] must not be empty")
    return inputs, sum(estimate_tokens(item) for item in inputs)


def _chat_messages(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    _require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty array")
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise _BadRequest(f"messages[{position}] needs a string 'content'")
        if message.get("role") not in ("system", "user", "assistant", "tool", "developer"):
            raise _BadRequest(f"messages[{position}] has an invalid 'role'")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _BadRequest("'max_tokens' must be a positive integer")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _BadRequest("'stream' must be a boolean")
    options = body.get("stream_options")
    if options is not None:
        # As OpenAI: stream_options only with stream enabled, include_usage a boolean.
        if stream is not True:
            raise _BadRequest("The 'stream_options' parameter is only allowed when 'stream' is "
                              "enabled.", "invalid_value")
        if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
            raise _BadRequest("'stream_options.include_usage' must be a boolean")
    # Framing overhead as documented for Solar tokenizers: 5 per message + 4.
    tokens = sum(estimate_tokens(m["content"]) + 5 for m in messages) + 4
    return messages, tokens


def _embeddings_reply(fake: FakeUpstage, body: Mapping[str, Any], inputs: list[str],
                      tokens: int) -> _Reply:
    size = fake.wrong_dimensions or fake.dimensions
    embedder = fake._embedder(size)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector = [x * fake.vector_scale for x in embedder.embed_one(text)]
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
            if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    if fake.shuffle_embeddings:
        data.reverse()
    return _Reply(200, {
        "object": "list",
        "data": data,
        "model": str(body["model"]) + fake.model_suffix,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })


def _chat_reply(fake: FakeUpstage, body: Mapping[str, Any], messages: list[dict[str, Any]],
                prompt_tokens: int) -> _Reply:
    content = fake._chat_content(messages)
    finish = "stop"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and estimate_tokens(content) > max_tokens:
        content, finish = content[: max_tokens * 4], "length"
    completion_tokens = estimate_tokens(content) if content else 0
    model = str(body["model"]) + fake.model_suffix
    completion_id = f"chatcmpl-fake-{next(fake._ids)}"
    created = int(time.time())
    if body.get("stream") is True:
        options = body.get("stream_options")
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens} \
            if isinstance(options, dict) and options.get("include_usage") is True \
            and not fake.ignore_include_usage else None
        return _Reply(200, None, stream=_sse_chunks(fake, completion_id, created, model, content,
                                                    finish, usage))
    return _Reply(200, {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": None,
            "finish_reason": finish,
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": None,
    })


_WORD = re.compile(r"\S+\s*|\s+")


def _sse_chunks(fake: FakeUpstage, completion_id: str, created: int, model: str, content: str,
                finish: str, usage: dict[str, int] | None) -> Iterable[bytes]:
    """OpenAI's stream: a role chunk, one chunk per word (``stream_token_delay`` apart), a
    chunk with ``finish_reason``, with ``include_usage`` a chunk with empty ``choices`` and the
    usage (every other chunk then has ``"usage": null``), then ``data: [DONE]``."""
    def event(choices: list[dict[str, Any]], with_usage: dict[str, int] | None = None) -> bytes:
        chunk: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk",
                                 "created": created, "model": model, "system_fingerprint": None,
                                 "choices": choices}
        if usage is not None:
            chunk["usage"] = with_usage
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    def choice(delta: dict[str, Any], finish_reason: str | None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

    yield event(choice({"role": "assistant", "content": ""}, None))
    for number, word in enumerate(_WORD.findall(content)):
        if fake.stream_break_after is not None and number >= fake.stream_break_after:
            return
        fake._sleep(fake.stream_token_delay)
        yield event(choice({"content": word}, None))
    yield event(choice({}, finish))
    if usage is not None:
        yield event([], usage)
    yield b"data: [DONE]\n\n"
