"""Offline answers: quote the passages of the retrieved chunks that answer the question.

Used when no Upstage key is configured. It never pretends to be a language model: every
answer says it is extractive, and it cites only the chunks it quotes.

Relevance (docs/decisions.md, "Offline extractive answers: a relevance threshold"): a passage
(a sentence, or a table row read against its header) is scored by the share of the question's
content words it covers (a Hangul/CJK word through its bigrams, a name through its words, so
partly), each term weighted
by its BM25 inverse document frequency over the retrieved chunks: a term every retrieved chunk
contains tells little; one that none contains (the thing asked about that the documents do not
mention) weighs most. Terms found only in the chunk's title or section heading count half, and
a passage must contain at least one term itself. A passage must cover at least
``RELEVANCE_THRESHOLD`` of the weight to be quoted; when none does, the answer is ``NOT_FOUND``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from solar_rag.domain import Answer, ChatMessage, Citation, SearchHit, Usage
from solar_rag.text.markers import marker
from solar_rag.text.passages import PassageKind, passages
from solar_rag.text.query_terms import LATIN_TOKEN, STOPWORDS, WH_HEAD, korean_question_word, stem
from solar_rag.text.scripts import CJK

MODEL_NAME = "offline-extractive"
PREFIX = "Offline extractive answer (no language model is configured; quoted from your documents):"
NOT_FOUND = (
    "Offline extractive mode: I could not find sentences relevant to this question in the "
    "indexed documents."
)
MAX_QUOTES = 3
MAX_QUOTE_CHARS = 400
RELEVANCE_THRESHOLD = 0.5
"""Share of the question's (IDF-weighted) terms a passage must cover to be quoted."""
CONTEXT_WEIGHT = 0.5
"""What a term found only in the chunk's title or section heading counts for."""
NEAR_BEST = 0.8
"""Further quotes must score at least this share of the best passage's score."""

_HANGUL_CJK_RUN = re.compile(f"[{CJK}]+")
# Two or more capitalised words in a row: one name.
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9'-]*(?:[ \t]+[A-Z][A-Za-z0-9'-]*)+")
# A document's own "[3]" would read as a citation marker: quoted with full-width brackets.
_MARKER_LIKE = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")


def _bigrams(run: str) -> set[str]:
    return {run[i : i + 2] for i in range(len(run) - 1)}


def passage_terms(text: str) -> set[str]:
    """Every term of a passage: stemmed Latin words and numbers, Hangul/CJK bigrams."""
    lowered = text.lower()
    found = {stem(w) for w in LATIN_TOKEN.findall(lowered) if len(w) > 1}
    for run in _HANGUL_CJK_RUN.findall(lowered):
        found |= _bigrams(run)
    return found


def question_terms(question: str) -> dict[str, float]:
    """Content terms of a question (without stop words, interrogatives and Korean endings),
    each with its share of a word of the question. A word counts once: a Latin word is one
    term, each of the m bigrams of a Hangul/CJK word and each of the m words of a name
    ("Northwind Ledger") counts 1/m, so a partial match counts partly."""
    text = WH_HEAD.sub(" ", question)
    found: dict[str, float] = {}

    def add(words: list[str]) -> None:
        for word in words:
            found[word] = max(found.get(word, 0.0), 1 / len(words))

    for name in _NAME.findall(text):
        add([stem(w) for w in LATIN_TOKEN.findall(name.lower()) if len(w) > 1 and w not in STOPWORDS])
    lowered = _NAME.sub(" ", text).lower()
    for word in LATIN_TOKEN.findall(lowered):
        if len(word) > 1 and word not in STOPWORDS:
            add([stem(word)])
    for run in _HANGUL_CJK_RUN.findall(lowered):
        add(sorted(_bigrams(korean_question_word(run))))
    return found


@dataclass(frozen=True, slots=True)
class _Candidate:
    score: float
    number: int  # the source's [n]
    position: int
    text: str


def _idf(term: str, chunk_terms: Sequence[set[str]]) -> float:
    """BM25's inverse document frequency, the retrieved chunks being the collection."""
    n = len(chunk_terms)
    df = sum(1 for found in chunk_terms if term in found)
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _context(hit: SearchHit) -> str:
    return " ".join(part for part in (hit.chunk.title, hit.chunk.section) if part)


class ExtractiveAnswerGenerator:
    def generate(
        self,
        question: str,
        hits: Sequence[SearchHit],
        *,
        history: Sequence[ChatMessage] = (),
        temperature: float | None = None,
    ) -> Answer:
        wanted = question_terms(question)
        if not wanted or not hits:
            return Answer(NOT_FOUND, (), MODEL_NAME, Usage())
        chunk_terms = [passage_terms(f"{hit.chunk.text}\n{_context(hit)}") for hit in hits]
        weights = {term: share * _idf(term, chunk_terms) for term, share in wanted.items()}
        total = sum(weights.values())
        candidates: list[_Candidate] = []
        for number, hit in enumerate(hits, start=1):
            context = passage_terms(_context(hit)) & wanted.keys()
            chunk = hit.chunk
            for position, passage in enumerate(passages(
                    chunk.text, section=chunk.section, continues_section=chunk.index > 0)):
                if passage.kind is PassageKind.HEADING:
                    context |= passage_terms(passage.text) & wanted.keys()
                    continue
                own = passage_terms(passage.text) & wanted.keys()
                if not own:  # quoted for what it says; its heading only adds to that
                    continue
                score = (sum(weights[t] for t in own)
                         + CONTEXT_WEIGHT * sum(weights[t] for t in context - own)) / total
                if score >= RELEVANCE_THRESHOLD:
                    candidates.append(_Candidate(score, number, position, passage.text))
        if not candidates:
            return Answer(NOT_FOUND, (), MODEL_NAME, Usage())
        # Best first; among equals the better-ranked chunk, then the earlier passage.
        candidates.sort(key=lambda c: (-c.score, c.number, c.position))
        floor = candidates[0].score * NEAR_BEST
        chosen: list[_Candidate] = []
        seen: set[str] = set()
        for candidate in candidates:
            if candidate.score < floor or len(chosen) == MAX_QUOTES:
                break
            if candidate.text not in seen:  # overlapping chunks repeat passages
                seen.add(candidate.text)
                chosen.append(candidate)
        lines = [PREFIX]
        for candidate in chosen:
            lines.append(f'- "{_quote(candidate.text)}" {marker(candidate.number)}')
        cited = sorted({candidate.number for candidate in chosen})
        citations = tuple(Citation(index=n, hit=hits[n - 1]) for n in cited)
        return Answer("\n".join(lines), citations, MODEL_NAME, Usage())


def _quote(text: str) -> str:
    if len(text) > MAX_QUOTE_CHARS:
        cut = text[:MAX_QUOTE_CHARS]
        space = cut.rfind(" ")
        text = (cut[:space] if space > MAX_QUOTE_CHARS // 2 else cut).rstrip() + "…"
    return _MARKER_LIKE.sub(r"［\1］", text)
