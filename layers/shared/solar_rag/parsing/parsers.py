"""Parse a submitted document into normalised text and heading-delimited sections."""

from __future__ import annotations

from solar_rag.domain import ParsedDocument, SourceDocument
from solar_rag.errors import UnsupportedDocument
from solar_rag.parsing.budget import ParseBudget, ParseLimits, too_deep
from solar_rag.parsing.content_types import TEXT_CONTENT_TYPES
from solar_rag.parsing.gc_pause import cyclic_gc_paused
from solar_rag.parsing.html_text import parse_html
from solar_rag.parsing.markdown_text import parse_markdown
from solar_rag.parsing.outline import assemble
from solar_rag.text.normalize import normalize_text

SUPPORTED_CONTENT_TYPES = TEXT_CONTENT_TYPES


def parse_document(doc: SourceDocument, limits: ParseLimits | None = None) -> ParsedDocument:
    """Text, title and sections of ``doc``, dispatched on its content type.

    Raises :class:`UnsupportedDocument` for an unknown content type or a document without
    any text, and ``PayloadTooLarge``/``UnsupportedDocument`` for one that exceeds the parse
    ``limits`` (defaults: ``ParseLimits()``). ``ParsedDocument.text[s.start:s.start +
    len(s.text)] == s.text`` holds for every section. A document whose file reader
    already found its structure (``doc.parsed``: pages, headings) keeps it.
    """
    if doc.parsed is not None:
        return doc.parsed
    content_type = doc.content_type.split(";", 1)[0].strip().lower()
    budget = ParseBudget(limits)
    try:
        with cyclic_gc_paused():
            return _parse(doc, content_type, budget)
    except RecursionError as exc:  # no parser recurses on its input; kept as a safety net
        raise too_deep(f"document {doc.id!r}") from exc


def _parse(doc: SourceDocument, content_type: str, budget: ParseBudget) -> ParsedDocument:
    if content_type == "text/plain":
        return assemble(doc.title, [(None, normalize_text(doc.text))])
    if content_type == "text/markdown":
        return parse_markdown(doc.text, doc.title, budget)
    if content_type == "text/html":
        return parse_html(doc.text, doc.title, budget)
    raise UnsupportedDocument(
        f"unsupported content type {doc.content_type!r}; "
        f"expected one of: {', '.join(SUPPORTED_CONTENT_TYPES)}"
    )


def preload() -> None:
    """Import and build the parsers now (``rag serve`` at start-up), not in the first request."""
    from solar_rag.parsing.markdown_text import _parser

    _parser()
