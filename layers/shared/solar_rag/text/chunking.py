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

Speed: a section of normalised text (whitespace only spaces and newlines) whose sentences
all fit the budget, cut with :func:`estimate_tokens`, takes a fast path that finds the atoms
with one ``re.split`` and counts them with C-level ``map``s instead of a Python loop per
atom; every other section (another counter, tabs or other whitespace, an oversized sentence)
takes the general path. Both produce exactly the same atoms, which a golden test over the
benchmark corpus and property tests against the pre-speed-up chunker guard: a change of
chunks would re-embed every document.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat
from operator import add, sub

from solar_rag.domain import Chunk, ParsedDocument, Section, SourceDocument, chunk_id_for
from solar_rag.text.tokens import CJK_CHARS, LATIN_RUN, estimate_tokens

TokenCounter = Callable[[str], int]

PARAGRAPH, LINE, SENTENCE, WORD, CHARACTER = 4, 3, 2, 1, 0
_MIN_FILL = 0.5  # a chunk may end at a weaker boundary rather than stay under half full

_CLOSERS = "\"'”’)\\]」』》〉"
_BREAK = re.compile(
    r"(?P<para>\n[^\S\n]*\n\s*)"
    r"|(?P<line>[^\S\n]*\n[^\S\n]*)"
    rf"|[.?!…]+[{_CLOSERS}]*(?P<sent>[^\S\n]+)"  # English and Korean (다. 요.) sentence ends
    rf"|[。｡．？！]+[{_CLOSERS}]*(?P<cjk>[^\S\n]*)"  # CJK full stops need no space after
    rf"|(?<={CJK_CHARS})[.?!]+[{_CLOSERS}]*(?P<cjk_ascii>[^\S\n]*)"  # after NFKC: 何?次
)
_GROUP_LEVEL = {"para": PARAGRAPH, "line": LINE, "sent": SENTENCE, "cjk": SENTENCE,
                "cjk_ascii": SENTENCE}
_WORD = re.compile(r"\S+")

# The fast path's break pattern, for a section whose only whitespace is spaces and newlines,
# with no space before a newline: the same matches as _BREAK there (same spans, found at the
# same positions), but every match starts with a character of a small literal class, so the
# regex engine skips all other characters (letters and spaces, most of the text) in C; the
# lookbehinds then recheck that character. (A break starting with spaces, before a newline,
# cannot occur in such a section.) One capturing group, the whole break, for ``re.split``;
# its level follows from its newlines: none sentence, one line, two or more paragraph.
_SPLIT = re.compile(
    r"([\n.?!…。｡．？！](?:"
    r"(?<=\n) *\n[ \n]*"  # para
    r"|(?<=\n) *"  # line
    rf"|(?<=[.?!…])[.?!…]*[{_CLOSERS}]* +"  # sent
    rf"|(?<=[。｡．？！])[。｡．？！]*[{_CLOSERS}]* *"  # cjk
    rf"|(?<={CJK_CHARS}[.?!])[.?!]*[{_CLOSERS}]* *"  # cjk_ascii
    r"))"
)
_LEVEL_OF_NEWLINES = (SENTENCE, LINE, PARAGRAPH)
# Every character str.isspace() (and so str.split() and the regex class \s) takes for
# whitespace, except the space and the newline (a unit test checks it against str.isspace).
ODD_SPACE = re.compile("[\t\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
                       "\u205f\u3000]")
# estimate_tokens of a Latin run of n letters, minus n: (2n + 6) // 7 - n.
_LATIN_DELTA = tuple((2 * n + 6) // 7 - n for n in range(4096))
# ASCII text, costed in C: letters become L, spaces "_" and the other ASCII whitespace "\t"
# (the general path's business). Then a run of n letters becomes "#" and "_" where the "#"
# (and any L left) count its (2n + 6) // 7 tokens: each block of 7 letters from the run's
# start is 2 tokens, a rest of 1-3 letters 1, of 4-6 letters 2 ("LLL" and "LL" count 1, "L"
# stays and counts 1). Every character but "_" is then one token.
_ASCII_COST = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz \x0b\x0c\r\x1c\x1d\x1e\x1f",
    b"L" * 52 + b"_" + b"\t" * 7)
_RUN_COSTS = ((b"LLLLLLL", b"##_____"), (b"LLL", b"#__"), (b"LL", b"#_"))


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


@dataclass(slots=True)
class _Atoms:
    """Parallel arrays describing the atoms of one section (positions in the full text)."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)  # strength of the boundary before it
    cum_start: list[int] = field(default_factory=list)  # tokens from section start to atom
    cum_end: list[int] = field(default_factory=list)  # ... to its end


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
        return chunks

    # -- atoms ------------------------------------------------------------------------
    def _gap(self, gap: str) -> int:
        tokens = self._gap_tokens.get(gap)
        if tokens is None:
            tokens = self.count(gap)
            if len(self._gap_tokens) < 1024:
                self._gap_tokens[gap] = tokens
        return tokens

    def _atoms(self, text: str, begin: int, end: int) -> _Atoms:
        if self._additive:
            fast = self._fast_atoms(text, begin, end)
            if fast is not None:
                return fast
        atoms = _Atoms()
        position, level = begin, PARAGRAPH
        for match in _BREAK.finditer(text, begin, end):
            group = match.lastgroup or "sent"
            gap_begin, gap_end = match.span(group)
            if self._add(atoms, text, position, gap_begin, level):
                level = _GROUP_LEVEL[group]
            else:
                level = max(level, _GROUP_LEVEL[group])
            position = gap_end
        self._add(atoms, text, position, end, level)
        return atoms

    def _fast_atoms(self, text: str, begin: int, end: int) -> _Atoms | None:
        """The atoms of text[begin:end] as the general path finds them, or None when the
        section needs the general path: whitespace other than spaces and newlines (the token
        count below relies on it), a space before a newline (see _SPLIT), a first character
        whose break depends on the text before the section (the CJK lookbehind), or a
        sentence over the budget (to be split)."""
        section = text[begin:end]
        if " \n" in section or (begin and section[:1] in (".", "?", "!")):
            return None
        costs: bytes | None = None
        if section.isascii():
            costs = section.encode("ascii").translate(_ASCII_COST)
            if b"\t" in costs:
                return None
            for run, cost in _RUN_COSTS:
                costs = costs.replace(run, cost)
        elif ODD_SPACE.search(section):
            return None
        parts = _SPLIT.split(section)
        pieces, breaks = parts[::2], parts[1::2]
        # Atom i is piece i and the punctuation that starts break i (its whitespace is not
        # part of the atom). No piece but the first starts with whitespace: every break ends
        # by taking all the whitespace that follows it, or just before a newline, where the
        # next break starts. Positions are in the section until the end.
        offsets = list(accumulate(map(len, parts), initial=0))
        starts = offsets[::2]
        starts[0] += len(pieces[0]) - len(pieces[0].lstrip())
        ends = [*map(add, offsets[1::2], map(len, map(str.rstrip, breaks))),
                offsets[-2] + len(pieces[-1].rstrip())]
        lengths = list(map(sub, ends, starts))
        # Atoms hold no newline (every newline is inside a break) and no whitespace but
        # spaces: estimate_tokens is the non-space characters, plus for each Latin run of
        # n letters (2n + 6) // 7 - n.
        if costs is not None:
            tokens = list(map(sub, lengths, map(costs.count, repeat(b"_"), starts, ends)))
        else:
            tokens = list(map(sub, lengths, map(section.count, repeat(" "), starts, ends)))
            if LATIN_RUN.search(section):
                runs = map(LATIN_RUN.findall, repeat(section), starts, ends)
                try:
                    tokens = list(map(add, tokens, map(sum, map(
                        map, repeat(_LATIN_DELTA.__getitem__), map(map, repeat(len), runs)))))
                except IndexError:  # a Latin run of thousands of letters: over any budget
                    return None
        if max(tokens) > self.size:
            return None
        newlines = list(map(str.count, breaks, repeat("\n")))
        gaps = [0, *newlines]  # tokens between an atom and the previous one: the newlines
        levels = [PARAGRAPH, *map(_LEVEL_OF_NEWLINES.__getitem__, map(min, newlines, repeat(2)))]
        if min(lengths) <= 0:  # a piece of only whitespace: not an atom; its break is merged
            keep = [length > 0 for length in lengths]
            last = len(keep) - 1
            for i, kept in enumerate(keep):
                if not kept and i < last:
                    gaps[i + 1] += gaps[i]
                    levels[i + 1] = max(levels[i + 1], levels[i])
            starts = list(compress(starts, keep))
            if not starts:
                return _Atoms()
            ends = list(compress(ends, keep))
            tokens = list(compress(tokens, keep))
            gaps = list(compress(gaps, keep))
            levels = list(compress(levels, keep))
            gaps[0] = 0
        cum_end = list(accumulate(map(add, gaps, tokens)))
        if begin:
            starts = list(map(add, starts, repeat(begin)))
            ends = list(map(add, ends, repeat(begin)))
        return _Atoms(starts=starts, ends=ends, levels=levels,
                      cum_start=list(map(sub, cum_end, tokens)), cum_end=cum_end)

    def _add(self, atoms: _Atoms, text: str, start: int, end: int, level: int) -> bool:
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

    def _append(self, atoms: _Atoms, text: str, start: int, end: int, tokens: int,
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

    def _best_end(self, atoms: _Atoms, first: int, last: int, base: int) -> int:
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

    def _overlap_head(self, text: str, atoms: _Atoms, chunk_start: int, first: int,
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
