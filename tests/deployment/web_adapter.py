"""The AWS Lambda Web Adapter (LWA), played by the harness for a function that attaches its layer.

The real adapter is a Rust binary in a public layer (``LambdaAdapterLayerX86``/``Arm64`` of
account 753240598075) that cannot be downloaded here. On AWS, ``AWS_LAMBDA_EXEC_WRAPPER=
/opt/bootstrap`` makes the runtime start it; it runs the function's handler as a program
(``$LAMBDA_TASK_ROOT/$_HANDLER``, here ``run.sh``), waits until the readiness check path answers
on ``AWS_LWA_PORT``, then turns each invocation into an HTTP request to that port and, in
``response_stream`` mode, streams the response body back.

What this module does the same way: the handler script from the staged (read-only) code asset,
run as an executable, with the template's environment and the runtime's variables; ``python`` on
``PATH`` is the bare runtime's interpreter (``/var/lang/bin/python`` on Lambda); the readiness
check (any status below 500, LWA's default) within the init limit; one request at a time per
execution environment; the function's timeout ends a request (the environment is then killed);
the body is read as it arrives.

What differs (see docs/testing.md): the port is a free one, not the template's 8080 (several
tests and agents share the host); ``/opt/python`` does not exist here, so the layers' ``python``
folders are given in ``PYTHONPATH``, which ``run.sh`` keeps after ``/opt/python`` and the task
root (on Lambda they come first, merged); the read-only file system is not enforced inside the
app (no audit hook in a process the harness does not start itself); memory is checked after
each request from the process' peak RSS.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.deployment.lambda_process import (
    INIT_TIMEOUT_SECONDS,
    ExecutionEnvironment,
    FunctionConfig,
    FunctionError,
    Invocation,
    lambda_environment,
)
from tests.deployment.runtime_env import BareRuntime
from tests.fakes.rag_serve import free_port

ADAPTER_LAYER_NAMES = ("LambdaAdapterLayerX86", "LambdaAdapterLayerArm64")
DEFAULT_READINESS_PATH = "/"
LAMBDA_INIT_LIMIT_SECONDS = 10.0
"""Lambda's init phase limit (on-demand); reported, not enforced (CI machines are slower)."""


def is_web_adapter_layer(arn: str) -> bool:
    """The adapter's public layer, by layer name (``arn:…:layer:<name>:<version>``)."""
    parts = arn.split(":")
    return len(parts) >= 8 and parts[5] == "layer" and parts[6] in ADAPTER_LAYER_NAMES


@dataclass
class StreamedResponse:
    """An HTTP response as the client of a streamed route receives it: status and headers
    first, then chunks with their arrival time (``time.monotonic()``)."""

    status: int
    headers: dict[str, str]
    started: float
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    function: str | None = None
    invocation: Invocation | None = None
    ended: float = 0.0

    @property
    def body(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)

    def first_arrival(self, marker: bytes) -> float:
        """Seconds from the request to the chunk in which ``marker`` was complete."""
        seen = b""
        for arrived, chunk in self.chunks:
            seen += chunk
            if marker in seen:
                return arrived - self.started
        raise AssertionError(f"{marker!r} never arrived in {self.body[:500]!r}")


class WebAdapterProcess(ExecutionEnvironment):
    """The execution environments of a function behind the Lambda Web Adapter, one at a time."""

    def __init__(self, config: FunctionConfig, runtime: BareRuntime, scratch: Path, logs: Path,
                 extra_env: Mapping[str, str]) -> None:
        super().__init__(config, runtime, scratch, logs, extra_env)
        self.init_ms: list[float] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def readiness_path(self) -> str:
        return self.config.environment.get("AWS_LWA_READINESS_CHECK_PATH", DEFAULT_READINESS_PATH)

    @property
    def invoke_mode(self) -> str:
        return self.config.environment.get("AWS_LWA_INVOKE_MODE", "buffered").lower()

    @property
    def pid(self) -> int | None:
        """The app's process (``run.sh`` execs python) while an environment is live."""
        return self._process.pid if self.running and self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def environment(self) -> dict[str, str]:
        env = lambda_environment(self.config, self.scratch, self.extra_env)
        env["PATH"] = f"{self.runtime.root / 'bin'}:{env['PATH']}"  # /var/lang/bin on Lambda
        env["PYTHONPATH"] = ":".join(str(layer / "python") for layer in self.config.layer_dirs
                                     if (layer / "python").is_dir())
        env["AWS_LWA_PORT"] = str(self._port)
        return env

    def _start(self) -> float:
        self.scratch.mkdir(parents=True, exist_ok=True)
        program = self.config.code_dir / self.config.handler
        if not (program.is_file() and os.access(program, os.X_OK)):
            raise FunctionError(self.config.logical_id, {
                "errorType": "Runtime.InvalidEntrypoint",
                "errorMessage": f"the adapter runs $LAMBDA_TASK_ROOT/{self.config.handler}: not an executable file"})
        self._port = free_port()
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen([str(program)], env=self.environment(), cwd=self.scratch,
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        self.cold_starts += 1
        while True:
            status = self._probe()
            if status is not None and status < 500:
                break
            if self._process.poll() is not None or time.monotonic() - started > INIT_TIMEOUT_SECONDS:
                exited = self._process.poll()
                self.stop()
                raise FunctionError(self.config.logical_id, {
                    "errorType": "Runtime.ExitError" if exited is not None else "Runtime.InitTimeout",
                    "errorMessage": f"readiness check {self.readiness_path} on the adapter port never passed"
                                    f" (exit {exited})"}, self.log_tail())
            time.sleep(0.05)
        init_ms = (time.monotonic() - started) * 1000
        self.init_ms.append(init_ms)
        return init_ms

    def _probe(self) -> int | None:
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=2)
        try:
            connection.request("GET", self.readiness_path)
            return connection.getresponse().status
        except OSError:
            return None
        finally:
            connection.close()

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def cold(self) -> None:
        self.stop()

    def _peak_rss_mb(self) -> float:
        if self._process is None:
            return 0.0
        try:
            for line in Path(f"/proc/{self._process.pid}/status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return 0.0

    def forward(self, event: Mapping[str, Any]) -> StreamedResponse:
        """An API Gateway REST proxy event, sent to the app as the adapter does."""
        raw = event.get("body") or ""
        body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode("utf-8")
        headers = {k: ", ".join(v) for k, v in (event.get("multiValueHeaders") or {}).items()} or dict(
            event.get("headers") or {})
        query = event.get("multiValueQueryStringParameters") or {
            k: [v] for k, v in (event.get("queryStringParameters") or {}).items()}
        return self.request(event["httpMethod"], request_target(event["path"], query), headers, body,
                            event.get("requestContext") or {})

    def invoke(self, event: Mapping[str, Any]) -> Invocation:
        """The invocation with the response buffered into a proxy result (the shape a buffered
        integration would get), for callers that do not care about streaming."""
        response = self.forward(event)
        assert response.invocation is not None
        if response.invocation.error is not None:
            return response.invocation
        payload = {"statusCode": response.status, "headers": response.headers,
                   "body": base64.b64encode(response.body).decode("ascii"), "isBase64Encoded": True}
        return dataclasses.replace(response.invocation, payload=payload)

    def request(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
                request_context: Mapping[str, object]) -> StreamedResponse:
        """One invocation: the request as LWA sends it to the app, the body read as it comes."""
        cold = not self.running
        init_ms = self._start() if cold else None
        timeout = float(self.config.timeout_seconds)
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=timeout)
        forwarded = {k: v for k, v in headers.items() if k.lower() not in {"content-length", "host"}}
        forwarded["x-amzn-request-context"] = json.dumps(request_context)
        error: dict[str, object] | None = None
        response = StreamedResponse(0, {}, started, function=self.config.logical_id)
        try:
            connection.request(method, target, body=body or None, headers=forwarded)
            raw = connection.getresponse()
            response.status = raw.status
            response.headers = _headers(raw.getheaders())
            while True:
                remaining = timeout - (time.monotonic() - started)
                if remaining <= 0:
                    raise TimeoutError
                if connection.sock is not None:
                    connection.sock.settimeout(remaining)
                chunk = raw.read1(65536)
                if not chunk:
                    break
                response.chunks.append((time.monotonic(), chunk))
        except TimeoutError:
            self.stop()
            error = {"errorType": "Sandbox.Timedout", "errorMessage": f"Task timed out after {timeout:.2f} seconds"}
        except (OSError, http.client.HTTPException) as exc:
            exited = self._process.poll() if self._process else None
            self.stop()
            error = {"errorType": "Runtime.ExitError" if exited is not None else "Runtime.AdapterError",
                     "errorMessage": f"{type(exc).__name__}: {exc} (exit {exited})"}
        finally:
            connection.close()
        response.ended = time.monotonic()
        peak = self._peak_rss_mb()
        if error is None and peak > self.config.memory_mb:
            self.stop()
            error = {"errorType": "Runtime.OutOfMemory",
                     "errorMessage": f"peak RSS {peak:.0f} MB > MemorySize {self.config.memory_mb} MB"}
        invocation = Invocation(payload=None, error=error, cold=cold, init_ms=init_ms,
                                duration_ms=(response.ended - started) * 1000, peak_rss_mb=peak)
        self.invocations.append(invocation)
        response.invocation = invocation
        return response



def _headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        key = key.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out




def request_target(path: str, query: Mapping[str, list[str]] | None) -> str:
    return path + ("?" + urlencode([(k, v) for k, values in query.items() for v in values]) if query else "")
