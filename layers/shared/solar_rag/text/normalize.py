"""Text normalisation applied to every parsed document before chunking and embedding."""

from __future__ import annotations

import re
import unicodedata

from solar_rag.text.scripts import HANGUL_SYLLABLES_ASSIGNED

# Unicode format characters (category Cf, Unicode 15: zero-width space/joiners, BOM, bidi
# controls, soft hyphen, tag characters, ...), C0/C1 controls other than \t and \n, lone
# surrogates (they cannot be encoded as UTF-8) and the noncharacters U+FFFE/U+FFFF.
# Hard-coded rather than computed from unicodedata at import time: computing it scans
# 1.1 million code points and would cost ~0.3 s of Lambda cold start. A unit test checks
# this class against unicodedata.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb\ufffe\uffff"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]+"
)
# Characters that end a line: CR (alone or in CRLF), vertical tab, form feed (PDF page
# breaks), the C1 next-line control and the Unicode line/paragraph separators.
_LINE_BREAK = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_HSPACE = re.compile(r"[^\S\n]+")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")

SLICE_CHARS = 32_768
"""Longer texts are normalised slice by slice, cut where no rule can see across the cut, so no
single regex pass holds the GIL for long (a pass over 2 MB took 12-26 ms; ``rag serve``
answers health checks between slices)."""
# A cut between an ASCII graphic character, a space or a newline and a following ASCII graphic
# character or Hangul syllable: no whitespace or invisible run, line break pair or canonical
# composition spans it, and NFKC leaves both sides alone.
_CUT = re.compile(f"(?<=[!-~ \n])[!-~{HANGUL_SYLLABLES_ASSIGNED}]")


def normalize_text(text: str) -> str:
    """Canonical form of document text.

    NFKC (full-width letters and digits, ligatures and compatibility spaces become their
    plain forms); invisible and control characters removed except newline and tab; every
    line break becomes ``\\n``; runs of spaces and tabs become one space; lines carry no
    leading or trailing spaces; at most one blank line in a row; no surrounding whitespace.
    Idempotent.
    """
    if not text:
        return ""
    if len(text) <= SLICE_CHARS:
        return _normalize(text).strip()
    parts: list[str] = []
    start = 0
    while start < len(text):
        cut = _CUT.search(text, start + SLICE_CHARS) if start + SLICE_CHARS < len(text) else None
        end = cut.start() if cut else len(text)
        parts.append(_normalize(text[start:end]))
        start = end
    return "".join(parts).strip()


def _normalize(text: str) -> str:
    text = _LINE_BREAK.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    # NFKC can expose new characters to the rules above (e.g. U+2028 stays, but
    # compatibility forms of spaces become U+0020), so whitespace is handled after it.
    text = _HSPACE.sub(" ", text)
    text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text)
