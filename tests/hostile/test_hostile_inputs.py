"""Hostile documents of every class: each parses or fails alone with the right error.

The inputs (bench/hostile_inputs.py) are sized where the old parsers took over 10 s, over
1 GB, or crashed (docs/reliability.md has the figures); here only the outcome is asserted.
Times and memory are measured by bench/hostile_parsing.py and tests/hostile/test_peak_memory.py.
"""

from __future__ import annotations

import itertools

import pytest
from solar_rag.domain import SourceDocument
from solar_rag.errors import PayloadTooLarge, RagError, UnsupportedDocument
from solar_rag.parsing.budget import ParseBudget, ParseLimits, parse_limits
from solar_rag.parsing.docx import docx_markdown
from solar_rag.parsing.files import load_file
from solar_rag.parsing.html_text import parse_html
from solar_rag.parsing.markdown_text import parse_markdown
from solar_rag.parsing.parsers import parse_document
from solar_rag.parsing.pdf import pdf_text
from solar_rag.settings import Settings
from solar_rag.text.chunking import Chunker

from bench.hostile_inputs import BY_NAME, HOSTILE, MARKDOWN, Hostile, docx_deep, pdf_with_streams

ERRORS: dict[str, type[RagError]] = {"PayloadTooLarge": PayloadTooLarge,
                                     "UnsupportedDocument": UnsupportedDocument}


def index_locally(hostile: Hostile, limits: ParseLimits | None = None) -> int:
    """What every entry point does before embedding: read, parse, chunk. Returns chunks."""
    doc = load_file(hostile.data(), hostile.filename, document_id=hostile.name, limits=limits)
    parsed = parse_document(doc, limits)
    return len(Chunker(size_tokens=400, overlap_tokens=60).chunk(doc, parsed, "v"))


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_input_parses_or_fails_alone(hostile: Hostile) -> None:
    if hostile.outcome == "parses":
        assert index_locally(hostile) >= 1
        return
    with pytest.raises(ERRORS[hostile.outcome]) as caught:
        index_locally(hostile)
    assert not caught.value.retryable
    assert caught.value.message and "Traceback" not in caught.value.message


def test_budget_errors_name_the_setting() -> None:
    reasons = {}
    for name in ("docx_deep", "docx_elements", "docx_inflated", "pdf_forty_5mb_streams"):
        with pytest.raises(RagError) as caught:
            index_locally(BY_NAME[name])
        reasons[name] = caught.value.message
    assert "PARSE_MAX_DEPTH" in reasons["docx_deep"]
    assert "PARSE_MAX_ELEMENTS" in reasons["docx_elements"]
    assert "PARSE_MAX_DECOMPRESSED_BYTES" in reasons["docx_inflated"]
    # the total across streams, not pypdf's per-stream cap: the decoder hook is in place
    assert "PARSE_MAX_DECOMPRESSED_BYTES" in reasons["pdf_forty_5mb_streams"]


class SteppingClock:
    """A clock that advances one second per reading: any budget of N s expires in N checks."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> float:
        return float(next(self._ticks))


def expired_budget(seconds: float = 5.0) -> ParseBudget:
    return ParseBudget(ParseLimits(time_seconds=seconds), clock=SteppingClock())


@pytest.mark.parametrize("parse", [
    lambda b: parse_markdown(MARKDOWN["md_links"](400_000), None, b),
    lambda b: parse_markdown("paragraph\n\n" * 100_000, None, b),
    lambda b: parse_html("<p>x</p>" * 100_000, None, b),
    lambda b: docx_markdown(BY_NAME["docx_elements"].build(4_000_000), b),
    lambda b: pdf_text(pdf_with_streams(12, 1024 * 1024), b),
], ids=["markdown-one-paragraph", "markdown-blocks", "html", "docx", "pdf"])
def test_the_time_budget_is_checked_inside_every_parser(parse: object) -> None:
    with pytest.raises(PayloadTooLarge, match="PARSE_TIME_BUDGET_SECONDS"):
        parse(expired_budget())  # type: ignore[operator]


def test_markdown_element_budget_counts_block_tokens() -> None:
    budget = ParseBudget(ParseLimits(max_elements=10_000))
    with pytest.raises(PayloadTooLarge, match="PARSE_MAX_ELEMENTS"):
        parse_markdown("- a\n" * 10_000, None, budget)


def test_depth_budget_is_configurable() -> None:
    data = docx_deep(15)  # two elements per level, plus document, body, p, r, t
    assert "deep" in docx_markdown(data, ParseBudget(ParseLimits(max_depth=40)))[0]
    with pytest.raises(UnsupportedDocument, match="deeper than 20 levels"):
        docx_markdown(data, ParseBudget(ParseLimits(max_depth=20)))


def test_settings_feed_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARSE_TIME_BUDGET_SECONDS", "7.5")
    monkeypatch.setenv("PARSE_MAX_DECOMPRESSED_BYTES", "2048")
    monkeypatch.setenv("PARSE_MAX_DEPTH", "12")
    monkeypatch.setenv("PARSE_MAX_ELEMENTS", "5000")
    limits = parse_limits(Settings(_env_file=None))
    assert limits == ParseLimits(time_seconds=7.5, decompressed_bytes=2048, max_depth=12,
                                 max_elements=5000, max_text_chars=2_000_000)
    with pytest.raises(PayloadTooLarge, match="more than 2048 bytes"):
        load_file(BY_NAME["docx_deep"].data(), "small.docx", document_id="d", limits=limits)


def test_text_extracted_past_the_document_limit_stops_early() -> None:
    limits = ParseLimits(max_text_chars=1000)
    with pytest.raises(PayloadTooLarge, match="MAX_DOCUMENT_CHARS"):
        docx_markdown(BY_NAME["docx_elements"].build(200_000), ParseBudget(limits))


def test_default_budget_parses_ordinary_documents_unchanged() -> None:
    doc = SourceDocument(id="d", text="# Title\n\nSome *text* with a [link](x).",
                         content_type="text/markdown")
    assert parse_document(doc).text == "Title\n\nSome text with a link."
