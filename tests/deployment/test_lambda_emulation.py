"""The emulation itself: timeout, memory, read-only code, remaining time, Lambda variables.

A toy function (not the project's) checks that the harness enforces what the template sets,
so the tier cannot pass where Lambda would kill or refuse the function.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployment.lambda_process import FunctionConfig, FunctionProcess, stage_read_only
from tests.deployment.runtime_env import bare_runtime

TOY = '''
import json, os, time

def handler(event, context):
    action = event["action"]
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "allocate":
        block = bytearray(event["mb"] * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
    if action == "write":
        try:
            with open(event["path"], "w") as handle:
                handle.write("x")
            return {"written": True}
        except OSError as error:
            return {"written": False, "errno": error.errno}
    if action == "env":
        return {k: os.environ.get(k) for k in event["names"]} | {"cwd": os.getcwd()}
    if action == "remaining":
        first = context.get_remaining_time_in_millis()
        time.sleep(0.3)
        return {"first": first, "second": context.get_remaining_time_in_millis(),
                "memory": context.memory_limit_in_mb, "name": context.function_name}
    if action == "fail":
        raise ValueError("toy failure")
    return {"ok": True}
'''


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[FunctionProcess]:
    source = tmp_path / "src"
    source.mkdir()
    (source / "handler.py").write_text(TOY, encoding="utf-8")
    code = stage_read_only(source, tmp_path / "task")
    config = FunctionConfig(
        logical_id="ToyFunction", name="toy", code_name=None, handler="handler.handler", runtime="python3.12",
        memory_mb=160, timeout_seconds=2, environment={"FROM_TEMPLATE": "yes"}, code_dir=code, layer_dirs=(),
        tracing_active=True, region="eu-west-1", account="123456789012",
    )
    process = FunctionProcess(config, bare_runtime(), scratch=tmp_path / "scratch", logs=tmp_path, extra_env={})
    try:
        yield process
    finally:
        process.stop()


def test_timeout_from_the_template_kills_the_environment(toy: FunctionProcess) -> None:
    slow = toy.invoke({"action": "sleep", "seconds": 5})
    assert slow.error is not None and slow.error["errorType"] == "Sandbox.Timedout"
    assert 1900 <= slow.duration_ms < 4500
    assert not toy.running
    again = toy.invoke({"action": "noop"})
    assert again.cold and again.payload == {"ok": True}
    warm = toy.invoke({"action": "noop"})
    assert not warm.cold and toy.cold_starts == 2


def test_remaining_time_counts_down_and_context_matches_the_template(toy: FunctionProcess) -> None:
    result = toy.invoke({"action": "remaining"}).payload
    assert 1000 < result["first"] <= 2000
    assert result["first"] - result["second"] >= 250
    assert (result["memory"], result["name"]) == ("160", "toy")


def test_memory_above_the_template_size_fails_the_invocation(toy: FunctionProcess) -> None:
    invocation = toy.invoke({"action": "allocate", "mb": 200})
    assert invocation.error is not None and invocation.error["errorType"] == "Runtime.OutOfMemory"
    assert not toy.running


def test_only_the_scratch_directory_is_writable(toy: FunctionProcess, tmp_path: Path) -> None:
    code_file = toy.config.code_dir / "new.txt"
    assert toy.invoke({"action": "write", "path": str(code_file)}).payload == {"written": False, "errno": 30}
    assert toy.invoke({"action": "write", "path": str(tmp_path / "outside.txt")}).payload["written"] is False
    assert toy.invoke({"action": "write", "path": str(toy.scratch / "ok.txt")}).payload == {"written": True}
    assert not code_file.exists() and not (tmp_path / "outside.txt").exists()


def test_environment_is_lambdas_not_the_test_process(toy: FunctionProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    names = ["FROM_TEMPLATE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION",
             "LAMBDA_TASK_ROOT", "_HANDLER", "HOME", "PYTHONPATH", "VIRTUAL_ENV", "_X_AMZN_TRACE_ID"]
    env = toy.invoke({"action": "env", "names": names}).payload
    assert env["FROM_TEMPLATE"] == "yes" and env["AWS_LAMBDA_FUNCTION_NAME"] == "toy"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "160" and env["AWS_REGION"] == "eu-west-1"
    assert env["LAMBDA_TASK_ROOT"] == str(toy.config.code_dir) and env["_HANDLER"] == "handler.handler"
    assert env["HOME"] == env["cwd"] == str(toy.scratch)
    assert env["PYTHONPATH"] is None and env["VIRTUAL_ENV"] is None
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")


def test_an_unhandled_error_is_reported_as_lambda_does(toy: FunctionProcess) -> None:
    failed = toy.invoke({"action": "fail"})
    assert failed.error is not None
    assert (failed.error["errorType"], failed.error["errorMessage"]) == ("ValueError", "toy failure")
    assert toy.running  # the environment survives a handler error
    assert json.dumps(failed.error)


def test_peak_memory_is_the_functions_own(toy: FunctionProcess) -> None:
    """A small function reports a small peak, whatever the size of the test process."""
    small = toy.invoke({"action": "noop"})
    assert small.peak_rss_mb < 60
    bigger = toy.invoke({"action": "allocate", "mb": 64})
    assert bigger.error is None and bigger.peak_rss_mb >= small.peak_rss_mb + 60
