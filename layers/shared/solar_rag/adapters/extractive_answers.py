"""Offline answers: quote the sentences of the retrieved chunks that best match the question.

Used when no Upstage key is configured. It never pretends to be a language model: every
answer says it is extractive, and it cites only the chunks it quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from solar_rag.domain import Answer, ChatMessage, Citation, SearchHit, Usage
from solar_rag.text.markers import marker
from solar_rag.text.scripts import CJK

MODEL_NAME = "offline-extractive"
PREFIX = "Offline extractive answer (no language model is configured; quoted from your documents):"
NOT_FOUND = (
    "Offline extractive mode: I could not find sentences relevant to this question in the "
    "indexed documents."
)
MAX_QUOTES = 3
MAX_QUOTE_CHARS = 400

_STOPWORDS = frozenset(
    "a an and are as at be but by can did do does for from had has have how i if in into is it "
    "its me my no not of on or our so than that the their them then there these they this to "
    "was we were what when where which who whom why will with you your about tell please give "
    "explain describe show list much many".split()
)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
_LATIN_WORD = re.compile(r"[0-9a-z][0-9a-z'_-]*")
_HANGUL_CJK_RUN = re.compile(f"[{CJK}]+")


def terms(text: str) -> set[str]:
    """Content terms: Latin words without stop words, and bigrams of Hangul/CJK runs."""
    lowered = text.lower()
    found = {w for w in _LATIN_WORD.findall(lowered) if w not in _STOPWORDS and len(w) > 1}
    for run in _HANGUL_CJK_RUN.findall(lowered):
        if len(run) == 1:
            continue
        found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


class ExtractiveAnswerGenerator:
    def generate(
        self,
        question: str,
        hits: Sequence[SearchHit],
        *,
        history: Sequence[ChatMessage] = (),
        temperature: float | None = None,
    ) -> Answer:
        wanted = terms(question)
        if not wanted:
            return Answer(NOT_FOUND, (), MODEL_NAME, Usage())
        scored: list[tuple[float, int, int, str]] = []
        for number, hit in enumerate(hits, start=1):
            for position, sentence in enumerate(_SENTENCE_END.split(hit.chunk.text)):
                sentence = sentence.strip()
                if not sentence:
                    continue
                overlap = len(wanted & terms(sentence))
                if overlap == 0:
                    continue
                # Prefer sentences matching more of the question, then better-ranked chunks.
                scored.append((overlap / len(wanted), number, position, sentence))
        if not scored:
            return Answer(NOT_FOUND, (), MODEL_NAME, Usage())
        scored.sort(key=lambda item: (-item[0], item[1], item[2]))
        best = scored[0][0]
        chosen = [item for item in scored if item[0] >= best / 2][:MAX_QUOTES]
        lines = [PREFIX]
        cited: set[int] = set()
        for _, number, _, sentence in chosen:
            quote = sentence if len(sentence) <= MAX_QUOTE_CHARS else sentence[:MAX_QUOTE_CHARS] + "…"
            lines.append(f'- "{quote}" {marker(number)}')
            cited.add(number)
        citations = tuple(Citation(index=n, hit=hits[n - 1]) for n in sorted(cited))
        return Answer("\n".join(lines), citations, MODEL_NAME, Usage())
