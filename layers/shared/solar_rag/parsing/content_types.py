"""The one registry of what the service reads: file extensions, their media types, and who
can read them (the built-in parsers, Upstage Document Parse, or both).

Everything else asks this module: the file loader (``parsing.files``), the parser of text
documents (``parsing.parsers``), the API's ``content_type`` check (``domain.CONTENT_TYPES``),
the knowledge-file reader, the S3 pipeline and the upload service (which extensions to
accept), and ``rag index`` (which files of a directory to pick). Pure data, no imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TEXT_CONTENT_TYPES = ("text/plain", "text/markdown", "text/html")
"""The content types of a document's text (``POST /v1/documents``, ``SourceDocument``)."""

Reader = Literal["text", "knowledge", "pdf", "docx", "none"]
"""The built-in reader of a file type ("none": only Document Parse reads it)."""


@dataclass(frozen=True, slots=True)
class FileType:
    extension: str
    media_type: str
    reader: Reader
    document_parse: bool
    """Upstage Document Parse accepts it (reference: JPEG, PNG, BMP, TIFF, HEIC, PDF, DOCX,
    PPTX, XLSX, HWP, HWPX)."""
    text_type: str | None = None
    """For text files: the document content type their text has."""
    single_page: bool = False
    """Always exactly one page (a still image): Document Parse may read it synchronously."""


_OOXML = "application/vnd.openxmlformats-officedocument"
FILE_TYPES: tuple[FileType, ...] = (
    FileType(".txt", "text/plain", "text", False, "text/plain"),
    FileType(".text", "text/plain", "text", False, "text/plain"),
    FileType(".md", "text/markdown", "text", False, "text/markdown"),
    FileType(".markdown", "text/markdown", "text", False, "text/markdown"),
    FileType(".html", "text/html", "text", False, "text/html"),
    FileType(".htm", "text/html", "text", False, "text/html"),
    FileType(".json", "application/json", "knowledge", False),
    FileType(".pdf", "application/pdf", "pdf", True),
    FileType(".docx", f"{_OOXML}.wordprocessingml.document", "docx", True),
    FileType(".pptx", f"{_OOXML}.presentationml.presentation", "none", True),
    FileType(".xlsx", f"{_OOXML}.spreadsheetml.sheet", "none", True),
    FileType(".hwp", "application/x-hwp", "none", True),
    FileType(".hwpx", "application/haansofthwpx", "none", True),
    FileType(".png", "image/png", "none", True, single_page=True),
    FileType(".jpg", "image/jpeg", "none", True, single_page=True),
    FileType(".jpeg", "image/jpeg", "none", True, single_page=True),
    FileType(".bmp", "image/bmp", "none", True, single_page=True),
    FileType(".heic", "image/heic", "none", True, single_page=True),
    FileType(".tif", "image/tiff", "none", True),
    FileType(".tiff", "image/tiff", "none", True),
)
BY_EXTENSION: dict[str, FileType] = {t.extension: t for t in FILE_TYPES}
ALL_EXTENSIONS: frozenset[str] = frozenset(BY_EXTENSION)
"""Every extension some reader may read (the S3 pipeline, uploads and ``rag index`` accept
them; whether it can be read here depends on ``DOCUMENT_PARSE_TYPES`` and the key)."""
BUILT_IN_EXTENSIONS: frozenset[str] = frozenset(
    t.extension for t in FILE_TYPES if t.reader != "none")
DOCUMENT_PARSE_ONLY: frozenset[str] = frozenset(
    t.extension for t in FILE_TYPES if t.reader == "none")

DEFAULT_DOCUMENT_PARSE_TYPES = "image/*,pptx,xlsx,hwp,hwpx"
"""Types that nothing else reads; add ``pdf`` (scans, tables) or ``docx`` to send them too."""


def file_type(extension: str) -> FileType | None:
    return BY_EXTENSION.get(extension.lower())


def parse_type_selection(value: str) -> frozenset[str]:
    """The extensions a ``DOCUMENT_PARSE_TYPES`` value names: comma-separated extensions
    (``pdf``, ``.pdf``), media types (``application/pdf``) or families (``image/*``);
    ``*`` or ``all`` names every type Document Parse reads, ``none`` (or empty) none.
    Raises ``ValueError`` naming an entry that matches no type Document Parse reads."""
    chosen: set[str] = set()
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry or entry == "none":
            continue
        matched = {t.extension for t in FILE_TYPES if t.document_parse and _matches(t, entry)}
        if not matched:
            readable = sorted(t.extension.lstrip(".") for t in FILE_TYPES if t.document_parse)
            raise ValueError(f"{raw.strip()!r} is not a type Document Parse reads "
                             f"(one of: {', '.join(readable)}, a media type, image/*, all)")
        chosen |= matched
    return frozenset(chosen)


def _matches(kind: FileType, entry: str) -> bool:
    if entry in ("*", "all", "*/*"):
        return True
    if entry.endswith("/*"):
        return kind.media_type.startswith(entry[:-1])
    if "/" in entry:
        return kind.media_type == entry
    return kind.extension == "." + entry.lstrip(".")
