"""The grammar of document ids, enforced alike by the API, the CLI and S3 ingestion.

A new document's id:

- has 1 to 1,024 characters (S3 keys have at most 1,024 bytes) and is not blank;
- contains no control character (C0, DEL, C1), no line or paragraph separator
  (U+2028/U+2029), no bidirectional override or isolate (U+202A-U+202E, U+2066-U+2069) and
  no lone surrogate: ids travel in URL paths, logs and terminals;
- has no ``/``-separated segment made only of dots (``.``, ``..``): clients normalise such
  paths away, so ``GET /v1/documents/a/../b`` would never reach the document.

``ID_PATTERN`` (and ``NOT_BLANK_PATTERN``) render the same rules as regular expressions for
the OpenAPI schema (ECMA-262, Python and Rust read them alike; lone surrogates are left to the
code, a pattern cannot name them portably). Ids stored before these rules stay readable and
deletable: only writes check them.
"""

from __future__ import annotations

from collections.abc import Callable

from solar_rag.errors import InvalidInput

MAX_DOCUMENT_ID_CHARS = 1024

_FORBIDDEN_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0x2028, 0x2029), (0x202A, 0x202E),
                     (0x2066, 0x2069), (0xD800, 0xDFFF))
_CONTROLS = r"\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CHAR = rf"[^/{_CONTROLS}]"
_NON_DOT = rf"[^./{_CONTROLS}]"
_SEGMENT = rf"(?:\.*{_NON_DOT}{_CHAR}*)?"
ID_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
"""Segments separated by ``/``: each empty, or dots followed by a character that is neither a
dot nor a control character, then anything but ``/`` and control characters. Linear: the
parts of a segment cannot overlap."""
NOT_BLANK_PATTERN = (r"[^\t-\r\u001c- \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f"
                     r"\u205f\u3000]")
"""Unanchored: the string holds a character ``str.isspace`` does not count as whitespace."""


def _forbidden(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _FORBIDDEN_RANGES)


def document_id_problem(document_id: str) -> str | None:
    """Why ``document_id`` cannot name a new document, or None when it can."""
    if not document_id.strip():
        return "document id must not be empty or blank"
    if len(document_id) > MAX_DOCUMENT_ID_CHARS:
        return f"document id is longer than {MAX_DOCUMENT_ID_CHARS} characters"
    for position, char in enumerate(document_id):
        if _forbidden(char):
            return (f"document id must not contain control characters (U+{ord(char):04X} at "
                    f"position {position})")
    for segment in document_id.split("/"):
        if segment and not segment.strip("."):
            return (f"document id must not have a path segment made only of dots "
                    f"({segment[:8]!r})")
    return None


def check_document_id(document_id: str, *,
                      error: Callable[[str], Exception] = InvalidInput) -> str:
    """``document_id`` itself, or ``error`` with the reason (``ValueError`` for pydantic's
    validators)."""
    problem = document_id_problem(document_id)
    if problem is not None:
        raise error(problem)
    return document_id
