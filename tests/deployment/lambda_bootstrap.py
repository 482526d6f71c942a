"""Runs one Lambda function inside the bare runtime, the way the python3.12 runtime does.

Executed by the bare interpreter (``python -I``, standard library only, never imported by the
test process). Mirrors ``awslambdaric``: ``LAMBDA_TASK_ROOT`` first on ``sys.path``, then the
layers' ``python`` folders (``/opt/python``), then the runtime's own site-packages (boto3);
the handler module is imported once (init phase), then each invocation calls the handler
with the event and a context whose remaining time counts down to the deadline.

Read-only file system: an audit hook refuses (``EROFS``) every write outside the scratch
directory (Lambda's ``/tmp``), also for root, and counts the refused writes, so a module
without usable bytecode (Python would try to write ``__pycache__``) shows up.

Protocol: newline-delimited JSON over two inherited file descriptors (argv 1 and 2), so that
the function's own stdout/stderr stay its log output. argv 3 is a JSON configuration.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import resource
import sys
import time
import traceback
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PATH_EVENTS = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.symlink", "os.link",
                "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree", "shutil.move"}


class ReadOnlyFileSystem:
    def __init__(self, writable: list[str]) -> None:
        self.writable = tuple(os.path.realpath(p) for p in writable)
        self.denied: list[str] = []

    def allowed(self, path: object) -> bool:
        if isinstance(path, int):
            return True
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str | os.PathLike):
            return True
        full = os.path.abspath(os.fspath(path))
        if full.startswith(("/dev/", "/proc/")):
            return True
        return any(full == root or full.startswith(root + os.sep) for root in self.writable)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = ([*list(args), None, None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
            targets = [path] if writing else []
        elif event in _PATH_EVENTS:
            targets = [a for a in args[:2] if isinstance(a, str | bytes | os.PathLike)]
            if event in {"os.chmod", "os.chown", "os.utime", "os.truncate", "os.remove", "os.rmdir"}:
                targets = targets[:1]
        else:
            return
        for target in targets:
            if not self.allowed(target):
                self.denied.append(os.fsdecode(target) if isinstance(target, bytes) else str(target))
                raise PermissionError(errno.EROFS, "Read-only file system", str(target))


class LambdaContext:
    """The attributes of ``awslambdaric``'s context object."""

    def __init__(self, request_id: str, deadline_ms: float) -> None:
        env = os.environ
        self.aws_request_id = request_id
        self.function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = env["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.log_group_name = env["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = env["AWS_LAMBDA_LOG_STREAM_NAME"]
        region = env["AWS_REGION"]
        account = env.get("_TEST_ACCOUNT_ID", "123456789012")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return int(max(self._deadline_ms - time.time() * 1000, 0))


def _error(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(exc).__name__,
        "errorMessage": message if message is not None else str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _peak_rss_mb() -> float:
    """Peak RSS of this process image. Not ``ru_maxrss``: Linux carries it over ``execve`` from
    the forking parent (the test runner), so it would report the parent's size."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    request_fd, response_fd = int(sys.argv[1]), int(sys.argv[2])
    config = json.loads(sys.argv[3])
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    runtime_paths = [p for p in sys.path if p]
    # /var/task, then /opt/python/lib/python3.12/site-packages and /opt/python (per layer, in
    # the template's order), then the runtime (standard library, boto3).
    layer_paths: list[str] = []
    for layer in config["layers"]:
        layer_paths += [os.path.join(layer, "python", "lib", "python3.12", "site-packages"),
                        os.path.join(layer, "python")]
    sys.path[:] = [task_root, *[p for p in layer_paths if os.path.isdir(p)], *runtime_paths]

    fs = ReadOnlyFileSystem(config["writable"])
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    responses = os.fdopen(response_fd, "w", encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        responses.write(json.dumps(message) + "\n")
        responses.flush()

    sys.addaudithook(fs.hook)
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    started = time.perf_counter()
    handler: Any = None
    init_error: dict[str, Any] | None = None
    try:
        module = importlib.import_module(module_name.replace("/", "."))
        handler = getattr(module, function_name)
    except AttributeError as exc:
        init_error = _error(exc, "Runtime.HandlerNotFound",
                            f"Handler '{function_name}' missing on module '{module_name}'")
    except Exception as exc:
        init_error = _error(exc, "Runtime.ImportModuleError",
                            f"Unable to import module '{module_name}': {exc}")
    init_ms = (time.perf_counter() - started) * 1000
    send({"init_ms": init_ms, "init_error": init_error, "peak_rss_mb": _peak_rss_mb(),
          "denied_writes": list(fs.denied), "modules": len(sys.modules)})

    # Benchmarks only (bench/deployed_cold_start.py): code run once, just before the first
    # invocation, e.g. to price a library the function does not ship.
    prelude: str | None = config.get("prelude")
    for line in requests:
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
        denied_before = len(fs.denied)
        prelude_ms = 0.0
        started = time.perf_counter()
        result: dict[str, Any]
        if init_error is not None:
            result = {"error": init_error}
        else:
            context = LambdaContext(request["request_id"], request["deadline_ms"])
            try:
                if prelude is not None:
                    prelude_started = time.perf_counter()
                    exec(compile(prelude, "<prelude>", "exec"), {})  # benchmark code, see above
                    prelude_ms = (time.perf_counter() - prelude_started) * 1000
                    prelude = None
                payload = handler(request["event"], context)
            except Exception as exc:
                result = {"error": _error(exc)}
            else:
                try:
                    result = {"payload": json.loads(json.dumps(payload))}
                except (TypeError, ValueError) as exc:
                    result = {"error": _error(exc, "Runtime.MarshalError", f"Unable to marshal response: {exc}")}
        sys.stdout.flush()
        sys.stderr.flush()
        result.update(duration_ms=(time.perf_counter() - started) * 1000, peak_rss_mb=_peak_rss_mb(),
                      prelude_ms=prelude_ms,
                      denied_writes=fs.denied[denied_before:])
        send(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
