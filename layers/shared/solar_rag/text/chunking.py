"""Token-budgeted, structure-aware chunking with overlap.

A section is cut into *atoms*: sentences, or for a sentence longer than the budget, groups
of words, or for a word longer than the budget, runs of characters. Each atom remembers how
strong the boundary before it is (paragraph > line > sentence > word > character). A chunk
is a run of whole atoms of one section, never crossing into the next section, ending at the
strongest boundary that still fills at least half the budget. The next chunk of the same
section starts with about ``overlap_tokens`` of the previous chunk's trailing sentences (or
words). Chunk offsets always index ``ParsedDocument.text``.

Token counts of atoms are computed once and summed (exact for :func:`estimate_tokens`,
which is additive across whitespace); with any other counter every emitted chunk is
re-counted as a whole, so a counter that is not additive can shrink a chunk but never let one
exceed the budget.

Speed: a section of normalised text whose sentences all fit the budget, cut with
:func:`estimate_tokens`, gets its atoms from :func:`solar_rag.text.atoms.fast_atoms` (no
Python code per atom); every other section takes the general path below (``_atoms``). Both
find exactly the same atoms: a change of chunks would re-embed every document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from solar_rag.domain import Chunk, ParsedDocument, Section, SourceDocument, chunk_id_for
from solar_rag.parsing.gc_pause import cyclic_gc_paused
from solar_rag.text.atoms import (
    CHARACTER,
    CLOSERS,
    LINE,
    PARAGRAPH,
    SENTENCE,
    WORD,
    Atoms,
    fast_atoms,
)
from solar_rag.text.scripts import CJK_CHAR
from solar_rag.text.tokens import estimate_tokens

TokenCounter = Callable[[str], int]

_MIN_FILL = 0.5  # a chunk may end at a weaker boundary rather than stay under half full

# solar_rag.text.atoms._SPLIT finds the same breaks faster in normalised text: change both
# together (tests/unit/test_chunking_equivalence.py compares them).
# Linear by construction: a run of punctuation or spaces is only tried from its first
# character (the lookbehinds) and taken whole (possessive quantifiers), so "...." * n costs
# O(n), not O(n²) (8,000 dots took 1.2 s, 2 MB would have taken hours).


def _break_pattern(run_start_guard: str) -> re.Pattern[str]:
    return re.compile(
        r"(?P<para>\n[^\S\n]*+\n\s*)"
        # A line break starts at the first blank of its run, or at the newline itself when
        # an earlier break took the blanks before it.
        r"|(?P<line>(?:(?<![^\S\n])[^\S\n]++)?\n[^\S\n]*)"
        rf"|{run_start_guard}[.?!…]++[{CLOSERS}]*+(?P<sent>[^\S\n]+)"  # English, Korean (다. 요.)
        rf"|[。｡．？！]++[{CLOSERS}]*+(?P<cjk>[^\S\n]*)"  # CJK full stops need no space after
        rf"|(?<={CJK_CHAR})[.?!]++[{CLOSERS}]*+(?P<cjk_ascii>[^\S\n]*)"  # after NFKC: 何?次
    )


_BREAK = _break_pattern(r"(?<![.?!…])")
# At a section's first character a run of punctuation starts, whatever the previous section
# ends with: the guard above would see that section's "." and refuse the sentence end of
# ". the" (the pre-speed-up chunker, tests/reference/chunking_v1.py, has no guard).
_BREAK_AT_SECTION_START = _break_pattern("")
_SCAN_CHARS = 65_536
_SCAN_OVERLAP = 64


def _breaks(text: str, begin: int, end: int) -> Iterator[re.Match[str]]:
    """``_BREAK.finditer(text, begin, end)``, searched 64 KB at a time.

    One search over 2 MB without a break (a document of one long "word") held the GIL for
    100-150 ms. A break cut by the window's end is matched again in full; a window without
    any break is skipped but for its last 64 characters, so only a break longer than that,
    straddling two windows of 64 KB without any other break, could be missed.
    """
    position = begin
    if 0 < begin < end and text[begin - 1] in ".?!…":
        first = _BREAK_AT_SECTION_START.match(text, begin, end)
        if first is not None:
            yield first
            position = first.end()
    while position < end:
        stop = min(end, position + _SCAN_CHARS)
        match = _BREAK.search(text, position, stop)
        if match is None:
            if stop == end:
                return
            position = max(position + 1, stop - _SCAN_OVERLAP)
            continue
        if match.end() == stop < end:
            match = _BREAK.match(text, match.start(), end) or match
        yield match
        position = match.end()


_GROUP_LEVEL = {"para": PARAGRAPH, "line": LINE, "sent": SENTENCE, "cjk": SENTENCE,
                "cjk_ascii": SENTENCE}
_WORD = re.compile(r"\S+")


def _largest_fitting(fits: Callable[[int], bool], lo: int, hi: int, guess: int) -> int:
    """Largest m in [lo, hi] with fits(m), for fits true up to some m and false after;
    lo - 1 when none fits. Gallops from ``guess`` so a good guess costs few calls."""
    guess = min(max(guess, lo), hi)
    if fits(guess):
        good, step = guess, 1
        while good + step <= hi and fits(good + step):
            good += step
            step *= 2
        bad = min(good + step, hi + 1)
    else:
        bad, step = guess, 1
        while bad - step >= lo and not fits(bad - step):
            bad -= step
            step *= 2
        good = max(bad - step, lo - 1)
    while bad - good > 1:
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


class Chunker:
    """Splits parsed documents into chunks of at most ``size_tokens`` tokens."""

    def __init__(self, size_tokens: int, overlap_tokens: int,
                 count_tokens: TokenCounter = estimate_tokens) -> None:
        if size_tokens < 1:
            raise ValueError("size_tokens must be at least 1")
        if not 0 <= overlap_tokens < size_tokens:
            raise ValueError("overlap_tokens must be at least 0 and smaller than size_tokens")
        self.size = size_tokens
        self.overlap = overlap_tokens
        self.count = count_tokens
        self._additive = count_tokens is estimate_tokens  # sums of atoms are exact
        # Pieces of oversized sentences: small enough to pack several per chunk and to fit
        # after an overlap.
        self._piece = max(1, min(size_tokens // 4, size_tokens - overlap_tokens))
        self._gap_tokens: dict[str, int] = {}

    def chunk(self, doc: SourceDocument, parsed: ParsedDocument, version: str) -> list[Chunk]:
        with cyclic_gc_paused():  # many short-lived objects, no cycles: see gc_pause
            return self._chunk(doc, parsed, version)

    def _chunk(self, doc: SourceDocument, parsed: ParsedDocument, version: str) -> list[Chunk]:
        text = parsed.text
        sections = parsed.sections or (Section(heading=None, text=text, start=0),)
        chunks: list[Chunk] = []
        # chunk_id_for(doc.id, version, index) without hashing the id again for every chunk
        id_prefix = chunk_id_for(doc.id, version, 0).removesuffix("00000")
        for section in sections:
            end = section.start + len(section.text)
            if text[section.start:end] != section.text:
                raise ValueError("section offsets do not match the parsed text")
            for start, stop in self._section_spans(text, section.start, end):
                index = len(chunks)
                chunks.append(Chunk(
                    document_id=doc.id,
                    chunk_id=f"{id_prefix}{index:05d}",
                    index=index,
                    text=text[start:stop],
                    title=parsed.title,
                    section=section.heading,
                    start=start,
                    end=stop,
                    version=version,
                    source=doc.source,
                    metadata=dict(doc.metadata),
                ))
        if parsed.pages:  # page numbers beside the chunks: texts and ids stay as they are
            from solar_rag.parsing.pages import with_pages

            return with_pages(chunks, parsed.pages)
        return chunks

    # -- atoms ------------------------------------------------------------------------
    def _gap(self, gap: str) -> int:
        tokens = self._gap_tokens.get(gap)
        if tokens is None:
            tokens = self.count(gap)
            if len(self._gap_tokens) < 1024:
                self._gap_tokens[gap] = tokens
        return tokens

    def _atoms(self, text: str, begin: int, end: int) -> Atoms:
        if self._additive:
            fast = fast_atoms(text, begin, end, self.size)
            if fast is not None:
                return fast
        atoms = Atoms()
        position, level = begin, PARAGRAPH
        for match in _breaks(text, begin, end):
            group = match.lastgroup or "sent"
            gap_begin, gap_end = match.span(group)
            if self._add(atoms, text, position, gap_begin, level):
                level = _GROUP_LEVEL[group]
            else:
                level = max(level, _GROUP_LEVEL[group])
            position = gap_end
        self._add(atoms, text, position, end, level)
        return atoms

    def _add(self, atoms: Atoms, text: str, start: int, end: int, level: int) -> bool:
        """Append the atom(s) of text[start:end]; False when it is only whitespace."""
        raw = text[start:end]
        stripped = raw.strip()
        if not stripped:
            return False
        start += len(raw) - len(raw.lstrip())
        end = start + len(stripped)
        tokens = self.count(stripped)
        if tokens <= self.size:
            self._append(atoms, text, start, end, tokens, level)
        else:
            for piece_start, piece_end, piece_tokens, piece_level in self._split(
                    text, start, end, tokens):
                self._append(atoms, text, piece_start, piece_end, piece_tokens,
                             level if piece_start == start else piece_level)
        return True

    def _append(self, atoms: Atoms, text: str, start: int, end: int, tokens: int,
                level: int) -> None:
        before = atoms.cum_end[-1] + self._gap(text[atoms.ends[-1]:start]) if atoms.ends else 0
        atoms.starts.append(start)
        atoms.ends.append(end)
        atoms.levels.append(level)
        atoms.cum_start.append(before)
        atoms.cum_end.append(before + tokens)

    def _split(self, text: str, start: int, end: int,
               tokens: int) -> list[tuple[int, int, int, int]]:
        """Pieces of an oversized sentence: word groups, characters for oversized words."""
        words = [(m.start(), m.end()) for m in _WORD.finditer(text, start, end)]
        per_word = max(tokens / len(words), 1e-9)
        pieces: list[tuple[int, int, int, int]] = []
        first = 0
        while first < len(words):
            piece_start = words[first][0]

            def fits(m: int, piece_start: int = piece_start) -> bool:
                return self.count(text[piece_start:words[m][1]]) <= self._piece

            guess = first + int(self._piece / per_word) - 1
            last = _largest_fitting(fits, first, len(words) - 1, guess)
            if last >= first:
                piece_end = words[last][1]
                pieces.append((piece_start, piece_end,
                               self.count(text[piece_start:piece_end]), WORD))
                first = last + 1
                continue
            word_start, word_end = words[first]
            word_tokens = self.count(text[word_start:word_end])
            if word_tokens <= self.size:
                pieces.append((word_start, word_end, word_tokens, WORD))
            else:
                pieces.extend(self._split_characters(text, word_start, word_end, word_tokens))
            first += 1
        return pieces

    def _split_characters(self, text: str, start: int, end: int,
                          tokens: int) -> list[tuple[int, int, int, int]]:
        chars_per_token = (end - start) / max(tokens, 1)
        pieces: list[tuple[int, int, int, int]] = []
        position = start
        while position < end:
            piece_start = position

            def fits(m: int, piece_start: int = piece_start) -> bool:
                return self.count(text[piece_start:m]) <= self._piece

            guess = piece_start + max(1, int(self._piece * chars_per_token))
            stop = _largest_fitting(fits, piece_start + 1, end, guess)
            if stop <= piece_start:  # a single character over the budget: take it anyway
                stop = piece_start + 1
            pieces.append((piece_start, stop, self.count(text[piece_start:stop]), CHARACTER))
            position = stop
        return pieces

    # -- packing ----------------------------------------------------------------------
    def _section_spans(self, text: str, begin: int, end: int) -> list[tuple[int, int]]:
        atoms = self._atoms(text, begin, end)
        n = len(atoms.starts)
        spans: list[tuple[int, int]] = []
        first = 0
        head: tuple[int, int] | None = None  # (start, tokens up to atom ``first``)
        while first < n:
            first_tokens = atoms.cum_end[first] - atoms.cum_start[first]
            if head is not None and head[1] + first_tokens > self.size:
                head = None
            base = (head[1] if head else 0) - atoms.cum_start[first]
            last = first
            while last + 1 < n and base + atoms.cum_end[last + 1] <= self.size:
                last += 1
            last = self._best_end(atoms, first, last, base)
            start = head[0] if head else atoms.starts[first]
            stop = atoms.ends[last]
            while not self._additive and self.count(text[start:stop]) > self.size:
                if last > first:
                    last -= 1
                elif head is not None:
                    head, start = None, atoms.starts[first]
                else:
                    break  # one atom, measured alone: it fits
                stop = atoms.ends[last]
            spans.append((start, stop))
            head = self._overlap_head(text, atoms, start, first, last) if last + 1 < n else None
            first = last + 1
        return spans

    def _best_end(self, atoms: Atoms, first: int, last: int, base: int) -> int:
        """Index of the chunk's last atom: the strongest boundary that fills it enough."""
        if last + 1 >= len(atoms.starts):
            return last
        enough = self.size * _MIN_FILL
        for level in (PARAGRAPH, LINE, SENTENCE):
            for k in range(last, first - 1, -1):
                if base + atoms.cum_end[k] < enough:
                    break
                if atoms.levels[k + 1] >= level:
                    return k
        return last

    def _overlap_head(self, text: str, atoms: Atoms, chunk_start: int, first: int,
                      last: int) -> tuple[int, int] | None:
        """Where the next chunk starts inside this one, and the tokens before its new atoms."""
        if self.overlap == 0:
            return None
        following = last + 1
        lowest = first if atoms.starts[first] > chunk_start else first + 1
        best: int | None = None
        k = last
        while k >= lowest and atoms.cum_start[following] - atoms.cum_start[k] <= self.overlap:
            best = k
            k -= 1
        if best is not None:
            return atoms.starts[best], atoms.cum_start[following] - atoms.cum_start[best]
        # No whole sentence fits: take the trailing words of the last one.
        next_start = atoms.starts[following]
        word_starts = [m.start() for m in _WORD.finditer(text, atoms.starts[last], atoms.ends[last])
                       if m.start() > chunk_start]
        if not word_starts:
            return None

        def fits(i: int) -> bool:  # fewer words (larger i) always fit better
            return self.count(text[word_starts[-1 - i]:next_start]) <= self.overlap

        taken = _largest_fitting(fits, 0, len(word_starts) - 1, 0)
        if taken < 0:
            return None
        position = word_starts[-1 - taken]
        return position, self.count(text[position:next_start])
