"""The arithmetic of ``rag eval``: pure functions, no I/O.

Relevance is judged per document: a retrieved chunk is as relevant as its document's grade in
the question's ``expected_documents`` (0 when not listed). Results are first reduced to the
distinct documents in the order of their best-ranked chunk, so three chunks of one document
count once, and a rank is a position in that list (1-based).

- ``hit_at(k)``: 1 when a relevant document is among the first ``k`` documents, else 0.
- ``reciprocal_rank``: 1 / the rank of the first relevant document, 0 when none was retrieved
  (its mean over questions is the MRR).
- ``ndcg``: DCG / ideal DCG over the first ``k`` documents, with linear gain (the grade) and
  discount ``log2(rank + 1)``; the ideal ranking sorts every expected grade, best first. With
  binary relevance (every grade 1) it is the usual binary nDCG.
- ``percentile``: the nearest-rank definition: the smallest observed value with at least
  ``q`` % of the values at or below it (p50 of 1..10 is 5, p95 of 1..10 is 10). It is always a
  value that was actually observed.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

_MARKER_GROUP = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
"""Citation markers as the service writes and checks them (``[1]``, ``[1, 2]``, ``[2;3]``)."""


def distinct_documents(document_ids: Iterable[str]) -> list[str]:
    """Document ids in order of first appearance."""
    return list(dict.fromkeys(document_ids))


def hit_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    _check_k(k)
    return 1.0 if any(relevant.get(doc, 0) > 0 for doc in ranked[:k]) else 0.0


def reciprocal_rank(ranked: Sequence[str], relevant: Mapping[str, int], k: int | None = None) -> float:
    limit = len(ranked) if k is None else k
    for rank, doc in enumerate(ranked[:limit], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def dcg(gains: Sequence[float]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    _check_k(k)
    ideal = dcg(sorted((g for g in relevant.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        raise ValueError("nDCG needs at least one relevant document")
    return dcg([float(relevant.get(doc, 0)) for doc in ranked[:k]]) / ideal


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in 0..100 (0 gives the minimum)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def citation_markers(text: str) -> list[int]:
    """Every source number named by a marker, in order of appearance (repeats kept)."""
    return [int(part) for match in _MARKER_GROUP.finditer(text)
            for part in re.split(r"[,;]", match.group(1))]


def normalise(text: str) -> str:
    """For fact matching: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def facts_found(answer: str, facts: Sequence[Sequence[str]]) -> list[bool]:
    """Whether each expected fact occurs in the answer: any of its accepted spellings, after
    ``normalise`` of both, not glued to a further ASCII digit or letter ("5일" is not in "15일",
    "12" not in "120", "240" not in "1,240"; a Korean particle after a name is fine: "이서연은")."""
    text = normalise(answer)
    return [any(_spelling(spelling).search(text) for spelling in fact) for fact in facts]


def _spelling(fact: str) -> re.Pattern[str]:
    wanted = normalise(fact)
    first, last = wanted[:1], wanted[-1:]
    before = ("(?<![0-9])(?<![0-9][.,])" if _ascii_digit(first)
              else "(?<![a-z])" if _ascii_letter(first) else "")
    after = ("(?![0-9])(?![.,][0-9])" if _ascii_digit(last)
             else "(?![a-z])" if _ascii_letter(last) else "")
    return re.compile(before + re.escape(wanted) + after)


def _ascii_digit(char: str) -> bool:
    return char.isascii() and char.isdigit()


def _ascii_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


def cost_usd(prompt_tokens: int, completion_tokens: int, *, input_per_million: float,
             output_per_million: float) -> float:
    return (prompt_tokens * input_per_million + completion_tokens * output_per_million) / 1_000_000


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError("k must be at least 1")
