"""Pages beside chunks: laid out exactly by the readers, found for every chunk, and never a
change to the text or ids of chunks (the golden fixture guards documents without pages)."""

from __future__ import annotations

import pytest
from solar_rag.domain import Chunk, LayoutElement, SourceDocument
from solar_rag.errors import UnsupportedDocument, UnsupportedMediaType
from solar_rag.parsing.content_types import parse_type_selection
from solar_rag.parsing.files import DocumentParseRouting, load_file
from solar_rag.parsing.pages import layout_document, location, page_at
from solar_rag.parsing.parsers import parse_document
from solar_rag.parsing.pdf import pdf_text
from solar_rag.text.chunking import Chunker
from solar_rag.text.normalize import normalize_text

from tests.fakes.documents import make_pdf
from tests.fakes.scans import make_png, make_scanned_pdf

TABLE = "| Quarter | Revenue |\n| --- | --- |\n| Q3 | 4.2 M |"


def chunks_of(doc: SourceDocument, size: int = 40) -> list[Chunk]:
    return Chunker(size, 0).chunk(doc, parse_document(doc), "v" * 16)


def test_pdf_pages_are_tracked_and_the_text_is_what_it_was() -> None:
    pages = ["Alpha   page one.\nIts second line.", "", "Gamma page three\xad.", "Delta four."]
    data = make_pdf(pages, title="Report")
    doc = load_file(data, "r.pdf", document_id="r.pdf")
    text, _ = pdf_text(data)
    assert doc.text == normalize_text(text)  # what the text/plain parser made of it before
    assert doc.parsed is not None
    assert [(p.page, doc.text[p.start:p.start + 5]) for p in doc.parsed.pages] == [
        (1, "Alpha"), (3, "Gamma"), (4, "Delta")]  # the blank page 2 has no text to point at
    chunks = chunks_of(doc, size=8)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert chunk.page == page_at(doc.parsed.pages, chunk.start)
    assert chunks[-1].page == 4 and chunks[0].page == 1


def test_a_chunk_across_pages_names_both() -> None:
    doc = load_file(make_pdf(["first page text", "second page text"]), "a.pdf", document_id="a")
    (chunk,) = chunks_of(doc, size=400)
    assert (chunk.page, chunk.page_end) == (1, 2)
    assert location(chunk) == "pp. 1-2"


def test_documents_without_pages_have_none() -> None:
    doc = SourceDocument(id="m", text="# Leave\n\n25 days.\n\n## Expiry\n\nMarch.",
                         content_type="text/markdown")
    chunks = chunks_of(doc)
    assert all(c.page is None and c.page_end is None for c in chunks)
    assert location(chunks[-1]) == "Leave > Expiry"


def test_layout_sections_tables_and_pages() -> None:
    elements = [
        LayoutElement("header", 1, "ACME Corp — confidential"),
        LayoutElement("heading1", 1, "# Annual report"),
        LayoutElement("paragraph", 1, "We grew."),
        LayoutElement("heading1", 2, "## Revenue"),
        LayoutElement("table", 2, TABLE),
        LayoutElement("footer", 2, "2"),
        LayoutElement("heading1", 3, "Outlook"),
        LayoutElement("heading1", 3, "## Risks"),
        LayoutElement("paragraph", 3, "Rates."),
    ]
    parsed = layout_document(None, elements)
    assert parsed.title == "Annual report"
    assert "ACME" not in parsed.text and not parsed.text.endswith("2")
    assert [s.heading for s in parsed.sections] == [
        "Annual report", "Annual report > Revenue", "Outlook > Risks"]
    revenue = parsed.sections[1]
    assert revenue.text == "Revenue\n\n" + TABLE  # the table kept whole, as Markdown
    outlook = parsed.sections[2]
    assert outlook.text.startswith("Outlook\n\nRisks\n\nRates.")  # empty heading folded in
    for section in parsed.sections:
        assert parsed.text[section.start:section.start + len(section.text)] == section.text
    assert [(p.page, parsed.text[p.start:p.start + 7]) for p in parsed.pages] == [
        (1, "Annual "), (2, "Revenue"), (3, "Outlook")]
    doc = SourceDocument(id="r", text=parsed.text, content_type="text/markdown", parsed=parsed)
    table_chunk = next(c for c in chunks_of(doc, size=400) if "Q3" in c.text)
    assert table_chunk.page == 2 and table_chunk.section == "Annual report > Revenue"


def test_an_empty_layout_is_a_documents_failure() -> None:
    with pytest.raises(UnsupportedDocument):
        layout_document(None, [LayoutElement("footer", 1, "1"), LayoutElement("figure", 1, " ")])


class _Parser:
    def __init__(self, elements: list[LayoutElement]) -> None:
        self.elements = elements
        self.calls: list[tuple[str, int | None]] = []
        self.forced: list[bool] = []

    def parse(self, data: bytes, filename: str, *, pages: int | None = None,
              force_ocr: bool = False) -> list[LayoutElement]:
        self.calls.append((filename, pages))
        self.forced.append(force_ocr)
        return self.elements


def test_routing_by_type() -> None:
    parser = _Parser([LayoutElement("paragraph", 1, "scanned words")])
    routing = DocumentParseRouting(parse_type_selection("pdf,image/*"), parser)
    doc = load_file(make_scanned_pdf(3), "scan.pdf", document_id="s", document_parse=routing)
    assert doc.text == "scanned words" and doc.content_type == "text/markdown"
    assert parser.calls == [("scan.pdf", 3)]  # the page count chooses sync or async
    load_file(make_png(), "p.PNG", document_id="p", document_parse=routing)
    assert parser.calls[-1] == ("p.PNG", 1)
    load_file(make_pdf(["a text layer"]), "t.pdf", document_id="t", document_parse=routing)
    assert parser.forced == [True, False, False]  # OCR forced for the scan only
    # not selected: the built-in reader
    load_file(make_pdf(["text layer"]), "t.pdf", document_id="t",
              document_parse=DocumentParseRouting(parse_type_selection("image/*"), parser))
    assert len(parser.calls) == 3


def test_without_document_parse_the_types_only_it_reads_fail_naming_the_setting() -> None:
    with pytest.raises(UnsupportedMediaType, match="UPSTAGE_API_KEY") as offline:
        load_file(make_png(), "p.png", document_id="p")  # selected by default, no key
    assert offline.value.status == 415 and "DOCUMENT_PARSE_TYPES" in offline.value.message
    with pytest.raises(UnsupportedMediaType, match="add pptx to DOCUMENT_PARSE_TYPES"):
        load_file(b"PK\x03\x04", "deck.pptx", document_id="d",
                  document_parse=DocumentParseRouting(frozenset(), _Parser([])))
    with pytest.raises(UnsupportedDocument, match="DOCUMENT_PARSE_TYPES"):
        load_file(make_scanned_pdf(1), "scan.pdf", document_id="s")  # built-in: no text layer
    # pdf selected but no key: the built-in reader still reads what it can
    doc = load_file(make_pdf(["words"]), "w.pdf", document_id="w",
                    document_parse=DocumentParseRouting(parse_type_selection("pdf"), None))
    assert doc.text == "words"


@pytest.mark.parametrize(("value", "expected"), [
    ("image/*", {".png", ".jpg", ".jpeg", ".bmp", ".heic", ".tif", ".tiff"}),
    ("pdf, .DOCX", {".pdf", ".docx"}),
    ("application/pdf", {".pdf"}),
    ("none", set()),
    ("", set()),
])
def test_type_selection(value: str, expected: set[str]) -> None:
    assert parse_type_selection(value) == expected


@pytest.mark.parametrize("value", ["txt", "gif", "text/*", "application/zip"])
def test_type_selection_refuses_what_document_parse_cannot_read(value: str) -> None:
    with pytest.raises(ValueError, match="not a type Document Parse reads"):
        parse_type_selection(value)


def test_a_queued_document_keeps_its_pages() -> None:
    """``POST /v1/files`` answered 202: the S3 pipeline indexes the queued copy later."""
    from solar_rag.errors import InvalidInput
    from solar_rag.services.intake import QueuedDocument

    doc = load_file(make_pdf(["one", "two", "three"], title="T"), "q.pdf", document_id="q")
    again = QueuedDocument.from_json(QueuedDocument(doc, "v1").to_json()).document
    assert again == doc and again.parsed is not None and len(again.parsed.pages) == 3
    plain = SourceDocument(id="p", text="plain")
    assert QueuedDocument.from_json(QueuedDocument(plain, "v").to_json()).document == plain
    forged = QueuedDocument(doc, "v1").to_json().replace(b'"pages": [[0, 1]', b'"pages": [[99, 1]')
    with pytest.raises(InvalidInput):
        QueuedDocument.from_json(forged)
