import io
import json
import zipfile

import pytest
from solar_rag.errors import UnsupportedDocument
from solar_rag.parsing import docx as docx_module
from solar_rag.parsing.files import SUPPORTED_EXTENSIONS, load_file
from solar_rag.parsing.parsers import parse_document

from tests.fakes.documents import W, make_docx, make_pdf, paragraph


def load(data: bytes, name: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return load_file(data, name, document_id="doc-1", **kwargs)  # type: ignore[arg-type]


# -- plain files and decoding -------------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "content_type"),
    [("a.txt", "text/plain"), ("b.TEXT", "text/plain"), ("c.md", "text/markdown"),
     ("d.Markdown", "text/markdown"), ("e.html", "text/html"), ("dir/f.HTM", "text/html")],
)
def test_text_extensions(name: str, content_type: str) -> None:
    doc = load(b"hello", name, metadata={"k": 1}, source="s3://b/x")
    assert doc.content_type == content_type
    assert doc.id == "doc-1"
    assert doc.text == "hello"
    assert doc.source == "s3://b/x"
    assert doc.metadata == {"k": 1}


def test_source_defaults_to_filename_and_metadata_is_copied() -> None:
    metadata = {"team": "a"}
    doc = load(b"x", "notes.txt", metadata=metadata)
    assert doc.source == "notes.txt"
    doc.metadata["team"] = "b"
    assert metadata == {"team": "a"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("한국어 문서입니다".encode(), "한국어 문서입니다"),
        (b"\xef\xbb\xbf" + "BOM 텍스트".encode(), "BOM 텍스트"),
        ("한국어 문서입니다".encode("cp949"), "한국어 문서입니다"),
        ("똠방각하 펲".encode("cp949"), "똠방각하 펲"),  # cp949-only syllables (not in EUC-KR)
        ("utf-16 text ✓".encode("utf-16"), "utf-16 text ✓"),
        ("café".encode("latin-1"), "café"),
        (bytes(range(256)), bytes(range(256)).decode("latin-1")),
    ],
)
def test_decoding_fallbacks(data: bytes, expected: str) -> None:
    assert load(data, "x.txt").text == expected


def test_undecodable_bytes_never_crash_parsing() -> None:
    doc = load(b"\xff\xfe\xfa garbage \x00\x81", "x.md")
    parse_document(doc)


@pytest.mark.parametrize("name", ["virus.exe", "photo.GIF", "README", "archive.tar.gz",
                                  "x.doc", "folder/", ""])
def test_unsupported_extensions(name: str) -> None:
    with pytest.raises(UnsupportedDocument) as error:
        load(b"data", name)
    message = error.value.message
    assert "unsupported file type" in message
    for extension in (".txt", ".md", ".html", ".json", ".pdf", ".docx"):
        assert extension in message


def test_supported_extensions_constant() -> None:
    """The built-in readers' types, and those only Upstage Document Parse reads."""
    assert {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".json", ".pdf",
            ".docx", ".png", ".jpg", ".jpeg", ".bmp", ".heic", ".tif", ".tiff", ".pptx",
            ".xlsx", ".hwp", ".hwpx"} == SUPPORTED_EXTENSIONS


# -- JSON knowledge files -----------------------------------------------------------------

def test_knowledge_file_object_shape() -> None:
    payload = {"documents": [
        {"id": "faq-1", "title": "Refunds", "text": "Refunds take *5* days.",
         "metadata": {"lang": "en", "team": "billing", "n": 1}},
        {"id": "faq-2", "text": "## Details\n\nMore words.", "content_type": "text/markdown",
         "metadata": {"lang": "en", "team": "support", "n": True}},
        {"text": "<p>Shipping <b>fast</b></p><script>x()</script>", "content_type": "text/html",
         "metadata": {"lang": "en", "n": 1}},
    ]}
    doc = load(json.dumps(payload).encode(), "kb/faq.json", metadata={"source_kind": "kb"})
    assert doc.content_type == "text/markdown"
    # keys on which every entry agrees (bool True is not the number 1), then the caller's
    assert doc.metadata == {"lang": "en", "source_kind": "kb"}
    assert doc.title == "faq"
    parsed = parse_document(doc)
    assert [s.heading for s in parsed.sections] == ["Refunds", "faq-2 > Details", "Entry 3"]
    assert parsed.sections[0].text == "Refunds\n\nRefunds take *5* days."  # plain stays literal
    assert parsed.sections[2].text == "Entry 3\n\nShipping fast"


def test_knowledge_file_list_shape_single_entry_title() -> None:
    data = json.dumps([{"title": "Only one", "text": "Body # text", "metadata": {"a": "b"}}])
    doc = load(data.encode(), "one.json")
    assert doc.title == "Only one"
    assert doc.metadata == {"a": "b"}
    parsed = parse_document(doc)
    assert parsed.title == "Only one"
    assert parsed.text == "Only one\n\nBody # text"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b'"a string"', "knowledge file must be"),
        (b'{"docs": []}', '"documents" list'),
        (b'{"documents": {"text": "x"}}', '"documents" list'),
        (b"[]", "no documents"),
        (b'[1, 2]', "must be an object"),
        (b'[{"title": "no text"}]', '"text" must be a string'),
        (b'[{"text": 5}]', '"text" must be a string'),
        (b'[{"text": "x", "content_type": "application/pdf"}]', "content_type"),
        (b'[{"text": "x", "metadata": ["a"]}]', "metadata must be an object"),
        (b'[{"text": "x", "metadata": {"a": {"b": 1}}}]', "metadata value"),
        (b'[{"text": "x", "title": 7}]', "title must be a string"),
    ],
)
def test_invalid_knowledge_files(payload: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedDocument, match=reason):
        load(payload, "bad.json")


# -- PDF ----------------------------------------------------------------------------------

def test_pdf_text_layer_pages_joined() -> None:
    doc = load(make_pdf(["Hello PDF world.\nSecond line", "Page two text"], title="Manual"),
               "Manual.PDF")
    assert doc.content_type == "text/plain"
    assert doc.title == "Manual"
    assert "Hello PDF world." in doc.text
    page_one, page_two = doc.text.split("\n\n")
    assert "Second line" in page_one
    assert page_two == "Page two text"


def test_pdf_without_text_layer() -> None:
    with pytest.raises(UnsupportedDocument, match="no text layer"):
        load(make_pdf(["", ""]), "scan.pdf")


def test_encrypted_pdf() -> None:
    pypdf = pytest.importorskip("pypdf")
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["secret"]))))
    writer.encrypt("password", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    with pytest.raises(UnsupportedDocument, match="encrypted"):
        load(buffer.getvalue(), "locked.pdf")


@pytest.mark.parametrize("data", [b"", b"%PDF-1.4 truncated", b"not a pdf at all", b"\x00" * 64])
def test_broken_pdf(data: bytes) -> None:
    with pytest.raises(UnsupportedDocument, match="PDF"):
        load(data, "broken.pdf")


# -- DOCX ---------------------------------------------------------------------------------

def test_docx_headings_lists_tables() -> None:
    table = ("<w:tbl><w:tr><w:tc>" + paragraph("Name") + "</w:tc><w:tc>" + paragraph("Qty")
             + "</w:tc></w:tr><w:tr><w:tc>" + paragraph("Apple") + "</w:tc><w:tc>"
             + paragraph("3") + "</w:tc></w:tr></w:tbl>")
    body = (paragraph("Annual Report", "Title")
            + paragraph("Intro text with *stars* and # hash.")
            + paragraph("Results", "Heading1")
            + paragraph("Sub|part", "Heading2")
            + paragraph("first", numbered=True) + paragraph("second", numbered=True)
            + table
            + '<w:sdt><w:sdtContent>' + paragraph("Inside content control") + "</w:sdtContent></w:sdt>"
            + paragraph("   "))
    doc = load(make_docx(body), "report.docx")
    assert doc.content_type == "text/markdown"
    assert doc.title == "Annual Report"
    parsed = parse_document(doc)
    assert parsed.title == "Annual Report"
    assert [s.heading for s in parsed.sections] == ["Annual Report",
                                                    "Results > Subpart"]
    assert parsed.sections[0].text == "Annual Report\n\nIntro text with *stars* and # hash."
    assert parsed.sections[1].text == ("Results\n\nSubpart\n\n- first\n- second\n\n"
                                       "Name | Qty\nApple | 3\n\nInside content control")


def test_docx_localised_heading_style_names() -> None:
    styles = ('<w:style w:type="paragraph" w:styleId="berschrift1">'
              '<w:name w:val="heading 1"/></w:style>')
    doc = load(make_docx(paragraph("Kapitel", "berschrift1") + paragraph("Text"), styles),
               "de.docx")
    parsed = parse_document(doc)
    assert [s.heading for s in parsed.sections] == ["Kapitel"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a zip", "not a valid DOCX"),
        (b"", "not a valid DOCX"),
    ],
)
def test_bad_docx(data: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedDocument, match=reason):
        load(data, "bad.docx")


def test_docx_without_document_part() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(UnsupportedDocument, match=r"no word/document\.xml"):
        load(buffer.getvalue(), "empty.docx")


def test_docx_invalid_xml() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document><unclosed>")
    with pytest.raises(UnsupportedDocument, match="not valid XML"):
        load(buffer.getvalue(), "broken.docx")


def test_docx_entity_expansion_is_refused() -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            f"<w:document {W}><w:body><w:p><w:r><w:t>&lol2;</w:t></w:r></w:p></w:body></w:document>")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", bomb)
    with pytest.raises(UnsupportedDocument, match="DTD"):
        load(buffer.getvalue(), "bomb.docx")


def test_docx_zip_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docx_module, "MAX_PART_BYTES", 10_000)
    body = paragraph("x" * 20_000)  # compresses to a few hundred bytes
    data = make_docx(body)
    assert len(data) < 2_000
    with pytest.raises(UnsupportedDocument, match="too large"):
        load(data, "bomb.docx")


def test_docx_zip_bomb_with_lying_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """A header that understates the size is caught by the bounded read."""
    monkeypatch.setattr(docx_module, "MAX_PART_BYTES", 10_000)
    data = bytearray(make_docx(paragraph("y" * 20_000)))
    real_size = 0
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        real_size = archive.getinfo("word/document.xml").file_size
    # rewrite the uncompressed size in the central directory and local header
    needle = real_size.to_bytes(4, "little")
    data = bytearray(bytes(data).replace(needle, (100).to_bytes(4, "little")))
    with pytest.raises(UnsupportedDocument):
        load(bytes(data), "liar.docx")
