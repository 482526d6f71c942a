"""The Document Parse adapter against the fake Upstage server (real HTTP on 127.0.0.1):
sync and async shapes, limits, failures, retries, the time budget and the rate limits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from solar_rag.adapters.document_parse import (
    DocumentParseClient,
    DocumentParseFailed,
    elements_of,
)
from solar_rag.errors import (
    DocumentParsePending,
    PayloadTooLarge,
    UnsupportedDocument,
    UpstageKeyRejected,
    UpstreamError,
)
from solar_rag.resilience import deadline
from solar_rag.settings import Settings

from tests.fakes.document_parse_fake import Element
from tests.fakes.scans import make_png, make_scanned_pdf
from tests.fakes.upstage_server import FakeUpstage

KEY = "up-docparse-key-0123456789"
TABLE = "| Quarter | Revenue |\n| --- | --- |\n| Q3 | 4.2 M |"


@pytest.fixture
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY) as fake:
        yield fake


def client(upstage: FakeUpstage, key: str = KEY, **extra: object) -> DocumentParseClient:
    values: dict[str, object] = {"upstage_base_url": upstage.base_url,
                                 "document_parse_poll_seconds": 0.01,
                                 "document_parse_timeout_seconds": 5.0}
    settings = Settings(_env_file=None, **(values | extra))  # type: ignore[arg-type]
    return DocumentParseClient(settings, api_key=key, sleep=lambda _s: None)


def test_a_small_file_is_parsed_synchronously(upstage: FakeUpstage) -> None:
    png = make_png()
    upstage.document_parse.register(png, [
        Element("heading1", 1, "Invoice", markdown="# Invoice"),
        Element("table", 1, "Q3 4.2 M", markdown=TABLE),
        Element("footer", 1, "Page 1"),
    ])
    elements = client(upstage).parse(png, "scans/invoice.png", pages=1)
    assert [(e.category, e.page, e.text) for e in elements] == [
        ("heading1", 1, "# Invoice"), ("table", 1, TABLE), ("footer", 1, "Page 1")]
    (call,) = upstage.document_parse.calls("sync")
    assert call.status == 200 and call.authorized and call.filename == "invoice.png"
    assert call.fields == {"model": "document-parse", "mode": "standard", "ocr": "auto",
                           "output_formats": "['markdown']", "coordinates": "false"}
    assert upstage.document_parse.calls("submit") == []


def test_html_tables_when_asked(upstage: FakeUpstage) -> None:
    png = make_png(seed=3)
    upstage.document_parse.register(png, [Element("table", 1, "x", html="<table><tr><td>x</td></tr></table>")])
    (element,) = client(upstage, document_parse_output_format="html").parse(png, "t.png", pages=1)
    assert element.text == "<table><tr><td>x</td></tr></table>"


@pytest.mark.parametrize("relative", [False, True])
def test_a_long_or_uncounted_file_goes_async_and_batches_are_joined(
        upstage: FakeUpstage, relative: bool) -> None:
    pdf = make_scanned_pdf(25)
    upstage.document_parse.relative_batch_pages = relative
    upstage.document_parse.register(
        pdf, [Element("paragraph", page, f"text of page {page}") for page in range(1, 26)], polls=3)
    elements = client(upstage).parse(pdf, "big.pdf", pages=25)
    assert [e.page for e in elements] == list(range(1, 26))
    assert elements[24].text == "text of page 25"
    calls = upstage.document_parse
    assert len(calls.calls("submit")) == 1 and len(calls.calls("status")) == 4
    downloads = calls.calls("download")
    assert len(downloads) == 3  # 10-page batches
    assert not any(d.authorized for d in downloads)  # pre-signed URLs take no Authorization


def test_an_async_parse_that_fails_is_the_documents_failure(upstage: FakeUpstage) -> None:
    pdf = make_scanned_pdf(2, seed=1)
    upstage.document_parse.register(pdf, [Element("paragraph", 1, "x")], failure="corrupted page 2")
    parser = client(upstage)
    with pytest.raises(DocumentParseFailed, match="corrupted page 2") as error:
        parser.parse(pdf, "broken.pdf")
    assert not error.value.retryable and error.value.status == 400
    with pytest.raises(DocumentParseFailed):
        parser.parse(pdf, "broken.pdf")
    assert len(upstage.document_parse.calls("submit")) == 2  # a failed request is not resumed


def test_polling_stops_before_the_budget_and_the_retry_resumes(upstage: FakeUpstage) -> None:
    pdf = make_scanned_pdf(3, seed=2)
    upstage.document_parse.register(pdf, [Element("paragraph", 3, "late")], polls=50)
    parser = client(upstage)
    with deadline.budget(1.0), pytest.raises(DocumentParsePending) as error:
        parser.parse(pdf, "slow.pdf")
    assert error.value.retryable and "fake-" in error.value.message
    upstage.document_parse.jobs[next(iter(upstage.document_parse.jobs))].script.polls = 0
    (element,) = parser.parse(pdf, "slow.pdf")
    assert element.text == "late" and element.page == 3
    assert len(upstage.document_parse.calls("submit")) == 1  # resumed, not paid twice


def test_no_deadline_still_bounds_the_wait(upstage: FakeUpstage) -> None:
    pdf = make_scanned_pdf(1, seed=4)
    upstage.document_parse.register(pdf, [Element("paragraph", 1, "x")], polls=10_000)
    parser = client(upstage, document_parse_max_wait_seconds=0.2, document_parse_poll_seconds=0.05)
    parser._sleep = __import__("time").sleep  # real time: the wait is measured
    with pytest.raises(DocumentParsePending, match="still reading"):
        parser.parse(pdf, "never.pdf")


def test_page_and_size_limits(upstage: FakeUpstage) -> None:
    pdf = make_scanned_pdf(5, seed=5)
    upstage.document_parse.register(pdf, [Element("paragraph", 1, "x")], pages=5)
    upstage.document_parse.sync_max_pages = 4  # the fake answers 413 like the real API
    with pytest.raises(PayloadTooLarge, match="413"):
        client(upstage).parse(pdf, "a.pdf", pages=1)
    with pytest.raises(PayloadTooLarge, match="2000"):
        client(upstage).parse(pdf, "a.pdf", pages=2001)  # refused without a request
    assert len(upstage.document_parse.calls("sync")) == 1


def test_what_the_fake_refuses(upstage: FakeUpstage) -> None:
    png = make_png(seed=6)
    upstage.document_parse.register(png, [Element("paragraph", 1, "x")])
    with pytest.raises(UpstageKeyRejected):
        client(upstage, key="wrong").parse(png, "a.png", pages=1)
    with pytest.raises(UnsupportedDocument, match="Unknown model"):
        client(upstage, document_parse_model="document-parse-9").parse(png, "a.png", pages=1)
    with pytest.raises(UnsupportedDocument, match=r"415.*Unsupported document format"):
        client(upstage).parse(b"GIF89a not supported", "a.png", pages=1)
    with pytest.raises(UnsupportedDocument, match="cannot OCR"):
        client(upstage).parse(make_png(seed=7), "unregistered.png", pages=1)


def test_rate_limit_and_server_errors_are_retried_then_reported(upstage: FakeUpstage) -> None:
    png = make_png(seed=9)
    upstage.document_parse.register(png, [Element("paragraph", 1, "ok")])
    upstage.document_parse.fail_next(429, headers={"retry-after": "0"})
    upstage.document_parse.fail_next(503)
    (element,) = client(upstage).parse(png, "a.png", pages=1)
    assert element.text == "ok"
    upstage.document_parse.fail_next(500, times=3)
    with pytest.raises(UpstreamError, match="HTTP 500") as error:
        client(upstage).parse(png, "a.png", pages=1)
    assert error.value.retryable


def test_the_client_keeps_to_the_sync_rate_limit(upstage: FakeUpstage) -> None:
    """Seven requests against a server enforcing 3 per second: the client waits, never 429."""
    png = make_png(seed=10)
    upstage.document_parse.register(png, [Element("paragraph", 1, "ok")])
    parser = client(upstage, document_parse_max_retries=0)
    for _ in range(7):
        parser.parse(png, "a.png", pages=1)
    assert [c.status for c in upstage.document_parse.calls("sync")] == [200] * 7


def test_elements_of_batches_that_count_pages_from_one() -> None:
    body = {"elements": [{"id": 1, "page": 2, "category": "paragraph", "content": {"markdown": "b"}},
                         {"id": 0, "page": 1, "category": "heading1", "content": {"markdown": "# a"}}]}
    assert [(e.page, e.text) for e in elements_of(body, "markdown", first_page=11)] == [
        (11, "# a"), (12, "b")]
    assert [e.page for e in elements_of(body, "markdown", first_page=1)] == [1, 2]
    with pytest.raises(UpstreamError):
        elements_of({"elements": [{"page": 0, "category": "x"}]}, "markdown")
    with pytest.raises(UpstreamError):
        elements_of({}, "markdown")


def test_fixture_hashes_are_stable() -> None:
    """Registered results are keyed by SHA-256: the fixtures must be deterministic."""
    assert hashlib.sha256(make_scanned_pdf(2)).digest() == hashlib.sha256(make_scanned_pdf(2)).digest()
