"""Uploaded files (bytes + file name) to SourceDocuments, by extension."""

from __future__ import annotations

from pathlib import PurePosixPath

from solar_rag.domain import Metadata, SourceDocument
from solar_rag.errors import UnsupportedDocument
from solar_rag.parsing.budget import ParseBudget, ParseLimits, too_deep
from solar_rag.parsing.decoding import decode_text
from solar_rag.parsing.gc_pause import cyclic_gc_paused

_TEXT_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({*_TEXT_TYPES, ".json", ".pdf", ".docx"})


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
) -> SourceDocument:
    """Read an uploaded file into a SourceDocument ready for :func:`parse_document`.

    ``source`` defaults to ``filename``. Raises :class:`UnsupportedDocument` (with a reason a
    user can act on) for unsupported extensions and unreadable files, and
    ``PayloadTooLarge``/``UnsupportedDocument`` for files that exceed the parse ``limits``.
    """
    try:
        with cyclic_gc_paused():
            return _load(data, filename, document_id=document_id, metadata=metadata,
                         source=source, budget=ParseBudget(limits))
    except RecursionError as exc:  # no reader recurses on its input; kept as a safety net
        raise too_deep(f"file {filename!r}") from exc


def _load(data: bytes, filename: str, *, document_id: str, metadata: Metadata | None,
          source: str | None, budget: ParseBudget) -> SourceDocument:
    extension = extension_of(filename)
    meta: Metadata = dict(metadata or {})
    origin = source if source is not None else filename
    if extension in _TEXT_TYPES:
        return SourceDocument(id=document_id, text=decode_text(data), title=None,
                              content_type=_TEXT_TYPES[extension], source=origin, metadata=meta)
    if extension == ".json":
        from solar_rag.parsing.knowledge import knowledge_document

        return knowledge_document(decode_text(data), document_id=document_id,
                                  title=PurePosixPath(filename).stem or None,
                                  source=origin, metadata=meta, budget=budget)
    if extension == ".pdf":
        from solar_rag.parsing.pdf import pdf_text

        text, title = pdf_text(data, budget)
        return SourceDocument(id=document_id, text=text, title=title, content_type="text/plain",
                              source=origin, metadata=meta)
    if extension == ".docx":
        from solar_rag.parsing.docx import docx_markdown

        text, title = docx_markdown(data, budget)
        return SourceDocument(id=document_id, text=text, title=title,
                              content_type="text/markdown", source=origin, metadata=meta)
    found = f"extension {extension!r}" if extension else "no extension"
    raise UnsupportedDocument(
        f"unsupported file type ({found}); supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}"
    )
