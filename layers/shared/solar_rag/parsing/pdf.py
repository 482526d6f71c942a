"""Text layer of a PDF, through pypdf, within the document's parse budget.

pypdf caps each stream (75 MB by default) but not the document: ten 70 MB streams in a
0.7 MB file took 830 MB and 57 s. Here every decoded stream counts against the budget's
total of decompressed bytes (through a wrapper around ``pypdf.filters.decode_stream_data``,
the one function pypdf decodes streams with, which finds the budget in a context
variable), no single stream may decode to more than that total (pypdf's own configuration,
applied for this call only), and the time budget is checked after every stream and page.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

from solar_rag.errors import PayloadTooLarge, RagError, UnsupportedDocument
from solar_rag.parsing import budget as budgets
from solar_rag.parsing.budget import ParseBudget

_install_lock = threading.Lock()
_installed = False


def _install_decode_hook() -> None:
    """Wrap pypdf's stream decoder once per process (idempotent, thread-safe)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        from pypdf import filters

        original = filters.decode_stream_data

        def decode_stream_data(stream: Any) -> bytes:
            data: bytes = original(stream)
            active = budgets.current()
            if active is not None:
                active.add_decompressed(len(data), "the PDF's streams")
                active.check_time()
            return data

        filters.decode_stream_data = decode_stream_data
        _installed = True


def _stream_limits(budget: ParseBudget) -> dict[str, int]:
    """pypdf's per-stream output caps, lowered to the document's total budget."""
    total = budget.limits.decompressed_bytes
    return {name: total for name in (
        "zlib_maximum_output_length", "lzw_maximum_output_length",
        "run_length_maximum_output_length", "array_based_stream_maximum_output_length",
        "jbig2_maximum_output_length", "brotli_maximum_output_length",
        "image_maximum_buffer_size",
    )}


def pdf_text(data: bytes, budget: ParseBudget | None = None) -> tuple[str, str | None]:
    """(text of all pages joined by blank lines, document title or None).

    Raises :class:`UnsupportedDocument` for a PDF that is encrypted with a password, has no
    text layer (a scan) or cannot be read, and :class:`PayloadTooLarge` for one that
    exceeds the parse budget.
    """
    pages, title = pdf_pages(data, budget)
    return "\n\n".join(text for _, text in pages), title


def pdf_pages(data: bytes, budget: ParseBudget | None = None
              ) -> tuple[list[tuple[int, str]], str | None]:
    """([(page number from 1, its text)] for the pages with text, title or None); raises
    as :func:`pdf_text` does."""
    # imported here: only the indexer reads PDFs
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import LimitReachedError, PdfReadError

    budget = budget or ParseBudget()
    _install_decode_hook()
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable files are noisy
    pages: list[str] = []
    chars = 0
    try:
        with budgets.active(budget), apply_configuration(None, **_stream_limits(budget)):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                try:
                    unlocked = reader.decrypt("")
                except Exception as exc:
                    raise UnsupportedDocument(
                        f"PDF is encrypted and cannot be opened: {exc}") from exc
                if not unlocked:
                    raise UnsupportedDocument("PDF is encrypted with a password")
            for page in reader.pages:
                budget.check_time()
                text = (page.extract_text() or "").strip()
                chars += len(text)
                budget.check_text(chars, "the PDF")
                pages.append(text)
            title = _title(reader)
    except RagError:
        raise
    except LimitReachedError as exc:
        raise PayloadTooLarge(f"the PDF exceeds a parsing limit: {exc}") from exc
    except PdfReadError as exc:
        raise UnsupportedDocument(f"unreadable PDF: {exc}") from exc
    except RecursionError as exc:
        raise budgets.too_deep("the PDF") from exc
    except Exception as exc:
        raise UnsupportedDocument(f"unreadable PDF ({type(exc).__name__}): {exc}") from exc
    numbered = [(number, text) for number, text in enumerate(pages, 1) if text]
    if not numbered:
        raise UnsupportedDocument(
            "PDF has no text layer (a scan): add pdf to DOCUMENT_PARSE_TYPES to read it "
            "with Upstage Document Parse (OCR)")
    return numbered, title


PROBE_PAGES = 3


def pdf_probe(data: bytes, budget: ParseBudget | None = None) -> tuple[int | None, bool | None]:
    """(number of pages, whether the first pages have a text layer) for Document Parse: the
    count chooses sync or async, a scan is sent with OCR forced. None where the file cannot
    be opened or read (Document Parse judges it)."""
    from pypdf import PdfReader, apply_configuration

    budget = budget or ParseBudget()
    _install_decode_hook()
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        with budgets.active(budget), apply_configuration(None, **_stream_limits(budget)):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                return None, None
            pages = len(reader.pages)
            for page in list(reader.pages)[:PROBE_PAGES]:
                budget.check_time()
                if (page.extract_text() or "").strip():
                    return pages, True
            return pages, False
    except Exception:  # an unreadable file is Document Parse's to judge
        return None, None


def _title(reader: object) -> str | None:
    try:
        metadata = getattr(reader, "metadata", None)
        title = getattr(metadata, "title", None) if metadata is not None else None
    except Exception:
        return None
    return title.strip() or None if isinstance(title, str) else None
