"""Generated hostile documents: one builder per attack class, sized by a parameter.

Shared by the hostile-input suite (tests/hostile) and its benchmark (bench/hostile_parsing.py).
Each builder returns the bytes of a file (``filename`` tells its type, as on S3 or for
``rag index``); ``api_document`` wraps the text ones for ``POST /v1/documents``.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Hostile:
    name: str
    filename: str
    build: Callable[[int], bytes]
    size: int  # the parameter the suite uses (see docs/reliability.md for what the old code did)
    outcome: str  # "parses", "PayloadTooLarge" or "UnsupportedDocument"
    content_type: str | None = None  # for the API: text/markdown or text/html

    def data(self) -> bytes:
        return _cached(self.name, self.size)


def _text(make: Callable[[int], str]) -> Callable[[int], bytes]:
    return lambda n: make(n).encode()


# -- Markdown: inputs that backtracked in the old regex parser ------------------------------

MARKDOWN: dict[str, Callable[[int], str]] = {
    # the reproduction: an ATX heading whose text is n spaces (80 KB took 59 s)
    "md_atx_spaces": lambda n: "# a" + " " * n + "b",
    "md_table_rule": lambda n: "|---" + " " * n + "x",
    "md_emphasis": lambda n: "**a " * (n // 4),
    "md_comment": lambda n: "<!--" * (n // 4),
    "md_images": lambda n: "![" * (n // 2),
    "md_autolinks": lambda n: "<http:a" * (n // 7),
    "md_links": lambda n: "[a" * (n // 2),
    # cmark's pathological cases (CommonMark parsers have been quadratic on these)
    "md_nested_brackets": lambda n: "[" * (n // 2) + "a" + "]" * (n // 2),
    "md_nested_quotes": lambda n: ">" * n + " a",
    "md_nested_lists": lambda n: "".join("  " * i + "- a\n" for i in range(int(0.99 * n ** 0.5))),
    "md_unclosed_emphasis": lambda n: "*a _b " * (n // 6),
    "md_backticks": lambda n: "".join("`" * i + "a" for i in range(1, int((2 * n) ** 0.5))),
}

# -- HTML ------------------------------------------------------------------------------------

HTML: dict[str, Callable[[int], str]] = {
    # the case: unmatched end tags inside a skipped element (240 KB took 4 s)
    "html_unmatched_end_in_skipped": lambda n: "<nav>" + "<b>" * (n // 7) + "</i>" * (n // 7)
                                               + "</nav><p>after</p>",
    # html.parser of Python 3.12.1 is quadratic on unterminated constructs
    "html_unterminated_tags": lambda n: "<p>text</p>" + "<a" * (n // 2),
    "html_unterminated_comments": lambda n: "<p>text</p>" + "<!--" * (n // 4),
    "html_nested_divs": lambda n: "<div>" * (n // 5) + "deep text",
}


def json_deep(n: int) -> bytes:
    """A knowledge file nested n levels deep (the old code raised RecursionError)."""
    return ('{"documents": [{"text": "x", "metadata": ' + "[" * n + "]" * n + "}]}").encode()


def json_many_entries(n: int) -> bytes:
    return ("[" + ",".join('{"text": "a"}' for _ in range(n)) + "]").encode()


# -- DOCX ------------------------------------------------------------------------------------

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _docx(document: bytes, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", document)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docx_deep(n: int) -> bytes:
    """Paragraphs wrapped in n nested content controls (old: RecursionError)."""
    body = ("<w:sdt><w:sdtContent>" * n + "<w:p><w:r><w:t>deep</w:t></w:r></w:p>"
            + "</w:sdtContent></w:sdt>" * n)
    return _docx(f"<w:document {_W}><w:body>{body}</w:body></w:document>".encode())


def docx_elements(n_bytes: int) -> bytes:
    """~n bytes of XML of tiny paragraphs (a 150 KB file of 49 MB XML peaked at 715 MB)."""
    paragraph = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>"
    body = paragraph * (n_bytes // len(paragraph))
    return _docx(b"<w:document " + _W.encode() + b"><w:body>" + body + b"</w:body></w:document>")


def docx_inflated(n_bytes: int) -> bytes:
    """Two parts of n/2 bytes each, both under the per-part cap, over the total budget."""
    half = n_bytes // 2
    filler = b"<w:p><w:r><w:t>" + b"y" * (half - 80) + b"</w:t></w:r></w:p>"
    document = b"<w:document " + _W.encode() + b"><w:body>" + filler + b"</w:body></w:document>"
    styles = b"<w:styles " + _W.encode() + b">" + b"<!-- " + b"z" * (half - 80) + b" --></w:styles>"
    return _docx(document, {"word/styles.xml": styles})


# -- PDF -------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _deflated_page(stream_bytes: int) -> bytes:
    content = b"BT /F1 12 Tf 72 720 Td (Hello page) Tj ET\n"
    compressor = zlib.compressobj(9)
    out = [compressor.compress(content)]
    block = b" " * (1 << 20)
    left = stream_bytes - len(content)
    while left > 0:
        out.append(compressor.compress(block[:min(left, len(block))]))
        left -= len(block)
    out.append(compressor.flush())
    return b"".join(out)


def pdf_with_streams(pages: int, stream_bytes: int) -> bytes:
    """A valid PDF whose pages each have one Flate content stream of ``stream_bytes``."""
    stream = _deflated_page(stream_bytes)
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i in range(pages):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>"
                       .encode())
        objects.append(f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode()
                       + stream + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
              .encode())
    return out.getvalue()


MB = 1024 * 1024
TEXT_LIMIT = 2_000_000  # MAX_DOCUMENT_CHARS: the largest text the API and indexer accept

# Sizes: where the old parsers took over 10 s (measured at half the size and extrapolated
# along their quadratic growth, see docs/reliability.md), or the largest text the service
# accepts for the cases the old parsers handled but a CommonMark parser might not.
_MD_SIZES = {"md_atx_spaces": 80_000, "md_table_rule": 80_000, "md_emphasis": 80_000,
             "md_comment": 160_000, "md_images": 80_000, "md_autolinks": 160_000,
             "md_links": 80_000, "md_nested_brackets": 80_000}
_NO_TEXT = {"md_comment", "md_nested_quotes"}  # nothing readable is left: "no text"
_TOO_MANY_INLINE = {"md_unclosed_emphasis"}  # over MAX_INLINE_TOKENS in one paragraph
_HTML_SIZES = {"html_unmatched_end_in_skipped": 240_000, "html_unterminated_tags": 200_000,
               "html_unterminated_comments": 200_000}


def _md_outcome(name: str) -> str:
    if name in _NO_TEXT:
        return "UnsupportedDocument"
    return "PayloadTooLarge" if name in _TOO_MANY_INLINE else "parses"


HOSTILE: list[Hostile] = [
    *[Hostile(name, f"{name}.md", _text(make), _MD_SIZES.get(name, TEXT_LIMIT - 100),
              _md_outcome(name), "text/markdown")
      for name, make in MARKDOWN.items()],
    *[Hostile(name, f"{name}.html", _text(make), _HTML_SIZES.get(name, TEXT_LIMIT - 100),
              "parses", "text/html")
      for name, make in HTML.items()],
    Hostile("json_deep", "deep.json", json_deep, 100_000, "UnsupportedDocument"),
    Hostile("docx_deep", "deep.docx", docx_deep, 5_000, "UnsupportedDocument"),
    Hostile("docx_elements", "elements.docx", docx_elements, 49 * MB, "PayloadTooLarge"),
    Hostile("docx_inflated", "inflated.docx", docx_inflated, 90 * MB, "PayloadTooLarge"),
    Hostile("pdf_ten_70mb_streams", "bomb.pdf", lambda n: pdf_with_streams(n, 70 * MB), 10,
            "PayloadTooLarge"),
    Hostile("pdf_thirty_70mb_streams", "bomb2.pdf", lambda n: pdf_with_streams(n, 70 * MB), 30,
            "PayloadTooLarge"),
    Hostile("pdf_forty_5mb_streams", "many.pdf", lambda n: pdf_with_streams(n, 5 * MB), 40,
            "PayloadTooLarge"),
]
BY_NAME = {h.name: h for h in HOSTILE}


@lru_cache(maxsize=8)
def _cached(name: str, size: int) -> bytes:
    return BY_NAME[name].build(size)


def api_document(hostile: Hostile) -> dict[str, object]:
    return {"id": hostile.name, "content_type": hostile.content_type,
            "text": hostile.data().decode()}
