"""A minimal W3C WebDriver client over HTTP (chromedriver), enough for the browser tests:
no Selenium, no websocket library. https://www.w3.org/TR/webdriver2/"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.fakes.processes import stop
from tests.fakes.rag_serve import free_port

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
HEADLESS_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1360,900"]
T = TypeVar("T")


def find_browser() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` paths, or ``None`` when either is missing."""
    browser = (os.environ.get("CHROMIUM") or shutil.which("chromium")
               or shutil.which("chromium-browser") or shutil.which("google-chrome"))
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if driver is None and os.environ.get("CHROMEWEBDRIVER"):  # GitHub's Ubuntu runners
        candidate = Path(os.environ["CHROMEWEBDRIVER"]) / "chromedriver"
        driver = str(candidate) if candidate.is_file() else None
    return (browser, driver) if browser and driver else None


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self, endpoint: str, session_id: str) -> None:
        self._http = httpx.Client(base_url=f"{endpoint}/session/{session_id}", timeout=60)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body if method == "POST" else None)
        value = response.json().get("value")
        if response.status_code != 200:
            raise WebDriverError(f"{method} {path}: {value}")
        return value

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return str(self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT])

    def find_all(self, css: str) -> list[str]:
        found = self._call("POST", "/elements", {"using": "css selector", "value": css})
        return [str(item[ELEMENT]) for item in found]

    def click(self, css: str) -> None:
        self._call("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css: str, text: str) -> None:
        element = self.find(css)
        self._call("POST", f"/element/{element}/clear", {})
        self._call("POST", f"/element/{element}/value", {"text": text})

    def send_file(self, css: str, path: Path) -> None:
        self._call("POST", f"/element/{self.find(css)}/value", {"text": str(path)})

    def text(self, css: str) -> str:
        return str(self._call("GET", f"/element/{self.find(css)}/text"))

    def run(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self) -> bytes:
        return base64.b64decode(self._call("GET", "/screenshot"))

    def wait_for(self, condition: Callable[[], T | None], *, timeout: float = 20.0,
                 what: str = "the condition") -> T:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def close(self) -> None:
        try:
            self._http.delete("")
        finally:
            self._http.close()


@contextmanager
def chromium(browser: str, driver: str, workdir: Path) -> Iterator[Browser]:
    port = free_port()
    log = (workdir / "chromedriver.log").open("w")
    process = subprocess.Popen([driver, f"--port={port}"], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{endpoint}/status", timeout=1).json()["value"]["ready"]:
                    break
            except (httpx.TransportError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.05)
        capabilities = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser, "args": HEADLESS_ARGS},
        }}}
        created = httpx.post(f"{endpoint}/session", json=capabilities, timeout=60)
        if created.status_code != 200:
            raise WebDriverError(f"no browser session: {created.text[:500]}")
        session = Browser(endpoint, created.json()["value"]["sessionId"])
        try:
            yield session
        finally:
            session.close()
    finally:
        stop(process)
        log.close()
