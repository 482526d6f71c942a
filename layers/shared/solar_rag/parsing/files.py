"""Uploaded files (bytes + file name) to SourceDocuments, by extension."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from solar_rag.domain import Metadata, SourceDocument
from solar_rag.errors import UnsupportedDocument, UnsupportedMediaType
from solar_rag.parsing.budget import ParseBudget, ParseLimits, too_deep
from solar_rag.parsing.content_types import (
    ALL_EXTENSIONS,
    DEFAULT_DOCUMENT_PARSE_TYPES,
    FileType,
    file_type,
    parse_type_selection,
)
from solar_rag.parsing.decoding import decode_text
from solar_rag.parsing.gc_pause import cyclic_gc_paused
from solar_rag.ports import DocumentParser

SUPPORTED_EXTENSIONS: frozenset[str] = ALL_EXTENSIONS
"""Every extension a reader may read (``parsing.content_types``); the built-in readers take
``BUILT_IN_EXTENSIONS``, the rest needs Document Parse (``DOCUMENT_PARSE_TYPES``)."""


@dataclass(frozen=True, slots=True)
class DocumentParseRouting:
    """Which files go to Upstage Document Parse (``DOCUMENT_PARSE_TYPES``, as extensions)
    and the parser that reads them (None: no Upstage key here)."""

    extensions: frozenset[str]
    parser: DocumentParser | None = None


DEFAULT_ROUTING = DocumentParseRouting(parse_type_selection(DEFAULT_DOCUMENT_PARSE_TYPES))


def extension_of(filename: str) -> str:
    """Lower-case extension of the last path segment ("" when there is none)."""
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def load_file(
    data: bytes,
    filename: str,
    *,
    document_id: str,
    metadata: Metadata | None = None,
    source: str | None = None,
    limits: ParseLimits | None = None,
    document_parse: DocumentParseRouting = DEFAULT_ROUTING,
) -> SourceDocument:
    """Read an uploaded file into a SourceDocument ready for :func:`parse_document`.

    ``source`` defaults to ``filename``. Raises :class:`UnsupportedDocument` (with a reason a
    user can act on) for unsupported extensions and unreadable files, and
    ``PayloadTooLarge``/``UnsupportedDocument`` for files that exceed the parse ``limits``.
    Types selected in ``document_parse`` are read by Upstage Document Parse (pages, headings,
    tables); a type only it reads fails with ``UnsupportedMediaType`` (415) naming
    ``DOCUMENT_PARSE_TYPES`` when it is not selected or there is no Upstage key.
    """
    kind = file_type(extension_of(filename))
    if kind is not None and kind.document_parse and kind.extension in document_parse.extensions:
        if document_parse.parser is not None:
            return _document_parse(data, filename, kind, document_parse.parser,
                                   document_id=document_id, metadata=metadata, source=source,
                                   budget=ParseBudget(limits))
        if kind.reader == "none":
            raise UnsupportedMediaType(
                f"{kind.extension} files are read by Upstage Document Parse "
                f"(DOCUMENT_PARSE_TYPES), which needs an Upstage API key (UPSTAGE_API_KEY, "
                f"or UPSTAGE_SECRET_ID deployed); none is configured here")
    elif kind is not None and kind.reader == "none":
        raise UnsupportedMediaType(
            f"{kind.extension} files can only be read by Upstage Document Parse: add "
            f"{kind.extension.lstrip('.')} to DOCUMENT_PARSE_TYPES")
    try:
        with cyclic_gc_paused():
            return _load(data, filename, document_id=document_id, metadata=metadata,
                         source=source, budget=ParseBudget(limits))
    except RecursionError as exc:  # no reader recurses on its input; kept as a safety net
        raise too_deep(f"file {filename!r}") from exc


def _load(data: bytes, filename: str, *, document_id: str, metadata: Metadata | None,
          source: str | None, budget: ParseBudget) -> SourceDocument:
    extension = extension_of(filename)
    kind = file_type(extension)
    meta: Metadata = dict(metadata or {})
    origin = source if source is not None else filename
    if kind is not None and kind.text_type is not None:
        return SourceDocument(id=document_id, text=decode_text(data), title=None,
                              content_type=kind.text_type, source=origin, metadata=meta)
    if extension == ".json":
        from solar_rag.parsing.knowledge import knowledge_document

        return knowledge_document(decode_text(data), document_id=document_id,
                                  title=PurePosixPath(filename).stem or None,
                                  source=origin, metadata=meta, budget=budget)
    if extension == ".pdf":
        from solar_rag.parsing.pages import paged_text
        from solar_rag.parsing.pdf import pdf_pages

        pages, title = pdf_pages(data, budget)
        parsed = paged_text(title, pages)
        return SourceDocument(id=document_id, text=parsed.text, title=title,
                              content_type="text/plain", source=origin, metadata=meta,
                              parsed=parsed)
    if extension == ".docx":
        from solar_rag.parsing.docx import docx_markdown

        text, title = docx_markdown(data, budget)
        return SourceDocument(id=document_id, text=text, title=title,
                              content_type="text/markdown", source=origin, metadata=meta)
    found = f"extension {extension!r}" if extension else "no extension"
    raise UnsupportedDocument(
        f"unsupported file type ({found}); supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
    )


def _document_parse(data: bytes, filename: str, kind: FileType, parser: DocumentParser, *,
                    document_id: str, metadata: Metadata | None, source: str | None,
                    budget: ParseBudget) -> SourceDocument:
    """The file as Upstage Document Parse reads it: headings, tables as tables, pages."""
    from solar_rag.parsing.pages import layout_document

    pages: int | None = 1 if kind.single_page else None
    scanned = False
    if kind.extension == ".pdf":
        from solar_rag.parsing.pdf import pdf_probe

        pages, has_text = pdf_probe(data, budget)
        scanned = has_text is False  # OCR "auto" reads images only: force it for a scan
    elements = parser.parse(data, filename, pages=pages, force_ocr=scanned)
    try:
        parsed = layout_document(None, elements)
    except UnsupportedDocument:
        raise UnsupportedDocument(f"Document Parse found no text in {filename}") from None
    return SourceDocument(id=document_id, text=parsed.text, title=parsed.title,
                          content_type="text/markdown",
                          source=source if source is not None else filename,
                          metadata=dict(metadata or {}), parsed=parsed)
