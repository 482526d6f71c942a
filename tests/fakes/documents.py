"""Small real PDF and DOCX files built with the standard library (text parsers, the API,
the deployment tier)."""

from __future__ import annotations

import io
import zipfile


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A minimal, valid PDF whose pages draw ``pages`` in Helvetica (one line per \\n)."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{i} 0 R" for i in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        lines = " ".join(f"({line}) Tj 0 -16 Td" for line in text.split("\n")) if text else ""
        stream = f"BT /F1 12 Tf 72 720 Td {lines} ET".encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>"
                       .encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = None
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode())
        info_id = len(objects)
    return write_pdf(objects, info_id)


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def write_pdf(objects: list[bytes], info_id: int | None = None) -> bytes:
    """A PDF file of numbered ``objects`` (1 is the catalog) with its cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    info = f" /Info {info_id} 0 R" if info_id else ""
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n"
              .encode())
    return out.getvalue()


def paragraph(text: str, style: str | None = None, numbered: bool = False) -> str:
    properties = ""
    if style or numbered:
        inner = (f'<w:pStyle w:val="{style}"/>' if style else "")
        inner += '<w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr>' if numbered else ""
        properties = f"<w:pPr>{inner}</w:pPr>"
    runs = "".join(f"<w:r><w:t xml:space=\"preserve\">{part}</w:t></w:r>"
                   for part in text.split("|"))
    return f"<w:p>{properties}{runs}</w:p>"


def make_docx(body: str, styles: str | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml",
                         f'<?xml version="1.0" encoding="UTF-8"?><w:document {W}><w:body>{body}'
                         "<w:sectPr/></w:body></w:document>")
        if styles is not None:
            archive.writestr("word/styles.xml", f"<w:styles {W}>{styles}</w:styles>")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()
