"""Text layer of a PDF, through pypdf."""

from __future__ import annotations

import io
import logging

from solar_rag.errors import UnsupportedDocument


def pdf_text(data: bytes) -> tuple[str, str | None]:
    """(text of all pages joined by blank lines, document title or None).

    Raises :class:`UnsupportedDocument` for a PDF that is encrypted with a password, has no
    text layer (a scan) or cannot be read.
    """
    from pypdf import PdfReader  # imported here: only the indexer reads PDFs
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable files are noisy
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except Exception as exc:
                raise UnsupportedDocument(f"PDF is encrypted and cannot be opened: {exc}") from exc
            if not unlocked:
                raise UnsupportedDocument("PDF is encrypted with a password")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        title = _title(reader)
    except UnsupportedDocument:
        raise
    except PdfReadError as exc:
        raise UnsupportedDocument(f"unreadable PDF: {exc}") from exc
    except Exception as exc:
        raise UnsupportedDocument(f"unreadable PDF ({type(exc).__name__}): {exc}") from exc
    text = "\n\n".join(page for page in pages if page)
    if not text.strip():
        raise UnsupportedDocument("PDF has no text layer (scanned images need OCR first)")
    return text, title


def _title(reader: object) -> str | None:
    try:
        metadata = getattr(reader, "metadata", None)
        title = getattr(metadata, "title", None) if metadata is not None else None
    except Exception:
        return None
    return title.strip() or None if isinstance(title, str) else None
