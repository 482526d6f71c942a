"""Child processes the tests start (``rag serve``, chromedriver, a function's ``run.sh``)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def stop(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Terminate, then kill if it has not exited within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes] | subprocess.Popen[str], *,
               timeout: float, what: str) -> None:
    """Poll ``ready`` every 0.1 s until it is true; ``RuntimeError`` when ``process`` exits
    first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {timeout:g} s")
        time.sleep(0.1)


def health_ok(url: str) -> Callable[[], bool]:
    """A ``ready`` check: ``GET {url}/v1/health`` answers 200."""
    import httpx

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/v1/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    return ready
