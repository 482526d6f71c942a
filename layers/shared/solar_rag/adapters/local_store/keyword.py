"""Keyword tokenisation for the FTS5 index, shared by indexing and querying.

FTS5's ``unicode61`` tokenizer splits on spaces and punctuation only, so Korean "서울은"
("Seoul" + particle) would be one token and a search for "서울" would miss it. We therefore
index a pre-tokenised copy of the text: Latin/digit words lower-cased, and Hangul/CJK runs
as overlapping character bigrams (a one-character run as itself). Queries go through the
same function and become an OR of quoted tokens, so user input can never reach FTS5's query
syntax (``NEAR``, ``*``, ``-``, ``column:``, parentheses, quotes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from solar_rag.text.scripts import LOCAL_FTS_V1_CJK

MAX_QUERY_TOKENS = 256

_C = LOCAL_FTS_V1_CJK  # frozen with the stored FTS rows (see solar_rag.text.scripts)
_TOKENS = re.compile(rf"(?=([{_C}]{{2}}))[{_C}]|((?<![{_C}])[{_C}](?![{_C}]))|([^\W_{_C}]+)")
"""Each match is one token, in text order: a CJK character followed by another (the bigram
they form, captured by the look-ahead), a lone CJK character, or a Latin/digit word."""
_CJK = re.compile(rf"[{_C}]")
_WORD = re.compile(r"[^\W_]+")
"""Without CJK characters ``_TOKENS`` finds exactly these words."""


def tokenize(text: str) -> list[str]:
    """Index/query tokens of ``text`` in order (duplicates kept: they weigh in BM25)."""
    if text.isascii():  # NFKC leaves ASCII alone, and casefold() of ASCII is lower()
        return _WORD.findall(text.lower())
    normalised = unicodedata.normalize("NFKC", text).casefold()
    if _CJK.search(normalised) is None:
        return _WORD.findall(normalised)
    return [bigram or single or word for bigram, single, word in _TOKENS.findall(normalised)]


def index_text(*parts: str | None) -> str:
    """The space-joined token string stored in the FTS5 table."""
    return " ".join([token for part in parts if part for token in tokenize(part)])


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression (OR of quoted tokens), or None when nothing is searchable."""
    tokens = _unique(tokenize(query))[:MAX_QUERY_TOKENS]
    if not tokens:
        return None
    return " OR ".join('"' + token.replace('"', '""') + '"' for token in tokens)


def _unique(tokens: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(tokens))
