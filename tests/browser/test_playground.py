"""The playground in real headless Chromium against ``rag serve`` (issue 14): index a file and
pasted text, ask, watch the answer stream in, open a citation's passage, switch search mode.

Needs Debian's ``chromium`` and ``chromium-driver``. Locally the test is skipped when they are
missing; in CI (``CI=true``) a missing browser is a failure: ``.ci/run`` installs them.
Set ``PLAYGROUND_SCREENSHOT=docs/playground.png`` to refresh the README's screenshot.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.webdriver import Browser, chromium, find_browser
from tests.fakes.rag_serve import rag_serve
from tests.fakes.upstage_server import FakeUpstage

KEY = "up_playground_key_0123456789"
BROWSER = find_browser()
if BROWSER is None:
    if os.environ.get("CI", "").lower() == "true":
        raise RuntimeError("chromium and chromedriver are required in CI (scripts/ci_system_deps.sh)")
    pytest.skip("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)

LEAVE = ("# Leave policy\n\nEmployees get 25 days of paid leave per year. Unused days expire at the "
         "end of March. Part-time staff get leave in proportion to their hours.\n")
ANSWER = ("Employees get 25 days of paid leave per year [1], and unused days expire at the end of "
          "March [1]. Trains are booked through the travel desk [2].")


@pytest.fixture(scope="module")
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=64) as fake:
        yield fake


@pytest.fixture(scope="module")
def served(upstage: FakeUpstage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("playground")
    env = {"UPSTAGE_API_KEY": KEY, "UPSTAGE_BASE_URL": upstage.base_url,
           "EMBEDDING_DIMENSIONS": "64", "RAG_DATA_DIR": str(workdir / "data")}
    with rag_serve(env, cwd=workdir) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    assert BROWSER is not None
    with chromium(*BROWSER, tmp_path_factory.mktemp("chromium")) as session:
        yield session


def _row_status(browser: Browser, document_id: str) -> str | None:
    status = browser.run(
        "const row = [...document.querySelectorAll('#doc-table tbody tr')]"
        ".find(r => r.dataset.id === arguments[0]); return row ? row.children[1].textContent : null;",
        document_id)
    return status if isinstance(status, str) else None


def test_index_ask_stream_and_open_a_citation(browser: Browser, served: str, upstage: FakeUpstage,
                                              tmp_path: Path) -> None:
    browser.get(f"{served}/")  # redirects to the playground
    assert browser.run("return location.pathname") == "/playground"
    assert browser.run("return document.title") == "Solar RAG playground"

    # A file picked from disk (sent as base64 to POST /v1/files) and pasted text.
    leave = tmp_path / "leave.md"
    leave.write_text(LEAVE, encoding="utf-8")
    browser.send_file("#doc-files", leave)
    browser.wait_for(lambda: _row_status(browser, "leave.md") == "indexed", what="leave.md indexed")
    browser.type("#doc-id", "travel.txt")
    browser.type("#doc-title", "Travel")
    browser.type("#doc-text", "Train tickets are booked through the travel desk two weeks ahead.")
    browser.click("#text-form button[type=submit]")
    browser.wait_for(lambda: _row_status(browser, "travel.txt") == "indexed", what="travel.txt indexed")
    assert "travel.txt: indexed" in browser.text("#doc-message")

    # Ask; the answer arrives word by word (80 ms apart) and is seen growing in the page.
    upstage.chat_script = lambda _messages: ANSWER
    upstage.stream_token_delay = 0.08
    try:
        browser.type("#question", "How much paid leave do employees get, and how are trains booked?")
        browser.click("#ask-button")
        partial = browser.wait_for(
            lambda: (text := browser.run(
                "const a = document.getElementById('answer');"
                "return a.classList.contains('streaming') ? a.textContent : '';")) and
            0 < len(text) < len(ANSWER) // 2 and text,
            what="a partial answer while streaming")
        assert ANSWER.startswith(partial)
        browser.wait_for(lambda: not browser.run(
            "return document.getElementById('answer').classList.contains('streaming')"),
            what="the end of the stream")
    finally:
        upstage.stream_token_delay = 0.0
        upstage.chat_script = None
    assert browser.text("#answer") == ANSWER
    assert browser.text("#ask-error") == ""
    assert len(browser.find_all("#answer button.cite")) == 3
    sources = browser.run("return [...document.querySelectorAll('#sources li')].map(li => li.textContent)")
    assert sources == ["Leave policy — leave.md", "Travel — travel.txt"]
    assert "tokens" in browser.text("#answer-meta")

    # A citation opens its passage.
    browser.click("#answer button.cite[data-index='2']")
    assert browser.run("return document.getElementById('passage').hidden") is False
    assert browser.text("#passage-title") == "[2] Travel"
    assert "booked through the travel desk" in browser.text("#passage-text")
    browser.click("#answer button.cite[data-index='1']")
    assert "25 days of paid leave" in browser.text("#passage-text")

    target = os.environ.get("PLAYGROUND_SCREENSHOT")
    if target:
        Path(target).write_bytes(browser.screenshot())
    assert browser.screenshot().startswith(b"\x89PNG")


def test_search_mode_and_filters_reach_the_api(browser: Browser, served: str, upstage: FakeUpstage) -> None:
    browser.get(f"{served}/playground")
    browser.wait_for(lambda: _row_status(browser, "leave.md"), what="the document list")
    upstage.reset()
    browser.type("#question", "How are train tickets booked at the travel desk?")
    browser.run("document.getElementById('mode').value = 'keyword'")
    browser.type("#filters", "document_id=travel.txt")
    browser.click("#ask-button")
    browser.wait_for(lambda: browser.text("#answer-meta"), what="the answer")
    assert upstage.embedding_requests() == []  # keyword search embeds nothing
    sources = browser.run("return [...document.querySelectorAll('#sources li')].map(li => li.textContent)")
    assert sources == ["Travel — travel.txt"]  # the filter kept one document
    assert len(upstage.chat_requests()) == 1
    browser.type("#filters", "document_id=missing.md, document_id=gone.md")
    browser.click("#ask-button")
    browser.wait_for(lambda: "could not find" in browser.text("#answer"), what="no sources")
    assert browser.run("return document.querySelectorAll('#sources li').length") == 0


def test_errors_are_shown(browser: Browser, served: str) -> None:
    browser.get(f"{served}/playground")
    browser.type("#question", "paid leave")
    browser.type("#filters", "not a filter")
    browser.click("#ask-button")
    assert browser.wait_for(lambda: browser.text("#ask-error"), what="an error") == \
        'filter "not a filter" is not key=value'
