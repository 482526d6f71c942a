"""Small real documents for the tier: a PDF with a text layer, a DOCX."""

from __future__ import annotations

from tests.fakes import documents


def make_pdf(lines: list[str], title: str | None = None) -> bytes:
    """A one-page PDF drawing ``lines`` in Helvetica."""
    return documents.make_pdf(["\n".join(lines)], title)


def make_docx(paragraphs: list[str], heading: str | None = None) -> bytes:
    body = documents.paragraph(heading, style="Heading1") if heading is not None else ""
    return documents.make_docx(body + "".join(documents.paragraph(p) for p in paragraphs))
