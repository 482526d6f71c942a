"""One Lambda function of the template, run in the bare runtime as a separate process.

A process is one execution environment: started on the first invocation (cold start: the
handler module is imported, init measured), reused for later ones (warm), killed on timeout,
on exceeding the template's memory, or by ``cold()``. Code and layer folders are staged
read-only; the function may write only to its scratch directory (Lambda's ``/tmp``), which is
also its working directory and ``HOME``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.deployment.runtime_env import BareRuntime

BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
INIT_TIMEOUT_SECONDS = 60.0  # Lambda allows 10 s, then retries init in the invoke phase; CI is slower


class FunctionError(AssertionError):
    """The function failed the invocation (unhandled error, timeout, out of memory)."""

    def __init__(self, function: str, error: Mapping[str, Any], log_tail: str = "") -> None:
        self.function = function
        self.error = dict(error)
        trace = "".join(error.get("stackTrace") or [])
        super().__init__(f"{function}: {error.get('errorType')}: {error.get('errorMessage')}\n{trace}"
                         f"\n--- function log (tail) ---\n{log_tail}")

    @property
    def error_type(self) -> str:
        return str(self.error.get("errorType", ""))


@dataclass(frozen=True)
class FunctionConfig:
    """What the template says about one function (intrinsics in ``environment`` resolved)."""

    logical_id: str
    name: str
    code_name: str | None
    """``functions/<code_name>/`` whose handler the code asset holds (None if none matches)."""
    handler: str
    runtime: str
    memory_mb: int
    timeout_seconds: int
    environment: Mapping[str, str]
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    tracing_active: bool
    region: str
    account: str


@dataclass(frozen=True)
class Invocation:
    payload: Any
    error: dict[str, Any] | None
    cold: bool
    init_ms: float | None
    duration_ms: float
    peak_rss_mb: float
    denied_writes: list[str] = field(default_factory=list)
    prelude_ms: float = 0.0
    """Time of the benchmark prelude within ``duration_ms`` (0 without one)."""


def stage_read_only(source: Path, destination: Path) -> Path:
    """A copy of an asset folder with every write bit removed (root ignores them: the runner's
    audit hook enforces read-only for root too)."""
    if destination.exists():
        return destination
    shutil.copytree(source, destination, symlinks=True)
    for dirpath, dirnames, filenames in os.walk(destination):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    destination.chmod(destination.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return destination


def lambda_environment(config: FunctionConfig, scratch: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The variables the managed runtime sets, the template's, and the test's AWS wiring."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(config.code_dir),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": config.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{config.runtime}",
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/12/06/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_ACCESS_KEY_ID": "ASIATESTDEPLOYMENT00",
        "AWS_SECRET_ACCESS_KEY": "test-secret-access-key",
        "AWS_SESSION_TOKEN": "test-session-token",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),  # Lambda's /tmp
        "_TEST_ACCOUNT_ID": config.account,
    }
    if config.tracing_active:
        env |= {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000", "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "_AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1", "_AWS_XRAY_DAEMON_PORT": "2000"}
    return {**env, **config.environment, **extra}


class ExecutionEnvironment:
    """What every kind of function process shares: its configuration, the bare runtime, a
    scratch directory, its log (stdout and stderr, for assertions and errors) and the record
    of its invocations and cold starts."""

    def __init__(self, config: FunctionConfig, runtime: BareRuntime, scratch: Path, logs: Path,
                 extra_env: Mapping[str, str]) -> None:
        self.config = config
        self.runtime = runtime
        self.scratch = scratch
        self.log_path = logs / f"{config.logical_id}.log"
        self.extra_env = dict(extra_env)
        self.invocations: list[Invocation] = []
        self.cold_starts = 0

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def log(self) -> str:
        return self.log_tail(chars=10**8)


class FunctionProcess(ExecutionEnvironment):
    """The execution environments of one function, one at a time."""

    def __init__(self, config: FunctionConfig, runtime: BareRuntime, scratch: Path, logs: Path,
                 extra_env: Mapping[str, str], prelude: str | None = None) -> None:
        super().__init__(config, runtime, scratch, logs, extra_env)
        self.prelude = prelude
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: IO[str] | None = None
        self._responses: int | None = None
        self._buffer = b""
        self._init: dict[str, Any] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def _start(self) -> dict[str, Any]:
        self.scratch.mkdir(parents=True, exist_ok=True)
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        env = lambda_environment(self.config, self.scratch, self.extra_env)
        settings = {"layers": [str(p) for p in self.config.layer_dirs], "writable": [str(self.scratch)],
                    "prelude": self.prelude}
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        try:
            self._process = subprocess.Popen(
                [str(self.runtime.python), "-I", str(BOOTSTRAP), str(request_read), str(response_write),
                 json.dumps(settings)],
                env=env, cwd=self.scratch, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(request_read, response_write), close_fds=True,
            )
        finally:
            log.close()
            os.close(request_read)
            os.close(response_write)
        self._requests = os.fdopen(request_write, "w", encoding="utf-8")
        self._responses = response_read
        self._buffer = b""
        self.cold_starts += 1
        message = self._read(INIT_TIMEOUT_SECONDS)
        if message is None:
            self.stop()
            raise FunctionError(self.config.logical_id, {"errorType": "Runtime.InitTimeout",
                                                         "errorMessage": "init did not finish"}, self.log_tail())
        self._init = message
        return message

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait(timeout=10)
        if self._requests is not None:
            with contextlib.suppress(OSError):
                self._requests.close()
            self._requests = None
        if self._responses is not None:
            os.close(self._responses)
            self._responses = None

    def cold(self) -> None:
        """The next invocation starts a new execution environment."""
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- invocation -------------------------------------------------------------------------

    def invoke(self, event: Mapping[str, Any]) -> Invocation:
        cold = not self.running
        init = self._start() if cold else None
        assert self._requests is not None
        timeout = float(self.config.timeout_seconds)
        started = time.time()
        request = {"event": event, "request_id": str(uuid.uuid4()), "deadline_ms": (started + timeout) * 1000,
                   "trace_id": f"Root=1-{int(started):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};"
                               "Sampled=0;Lineage=1:0:0"}
        try:
            self._requests.write(json.dumps(request) + "\n")
            self._requests.flush()
        except BrokenPipeError:
            pass
        result = self._read(timeout)
        error: dict[str, Any] | None
        elapsed_ms = (time.time() - started) * 1000
        if result is None:
            exited = self._process.poll() if self._process else None
            self.stop()
            error = ({"errorType": "Runtime.ExitError", "errorMessage": f"process exited ({exited})"}
                     if exited is not None else
                     {"errorType": "Sandbox.Timedout",
                      "errorMessage": f"Task timed out after {timeout:.2f} seconds"})
            invocation = Invocation(None, error, cold, init["init_ms"] if init else None, elapsed_ms, 0.0)
        else:
            error = result.get("error")
            if result["peak_rss_mb"] > self.config.memory_mb:
                self.stop()
                error = {"errorType": "Runtime.OutOfMemory",
                         "errorMessage": f"peak RSS {result['peak_rss_mb']:.0f} MB > MemorySize "
                                         f"{self.config.memory_mb} MB"}
            invocation = Invocation(
                payload=result.get("payload"), error=error, cold=cold,
                init_ms=init["init_ms"] if init else None, duration_ms=result["duration_ms"],
                peak_rss_mb=result["peak_rss_mb"],
                denied_writes=[*(init["denied_writes"] if init else []), *result["denied_writes"]],
                prelude_ms=float(result.get("prelude_ms", 0.0)),
            )
        self.invocations.append(invocation)
        return invocation

    def _read(self, timeout: float) -> dict[str, Any] | None:
        assert self._responses is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._responses], [], [], min(remaining, 0.5))
            if not ready:
                if self._process is not None and self._process.poll() is not None:
                    return None
                continue
            chunk = os.read(self._responses, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

