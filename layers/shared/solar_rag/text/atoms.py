"""Atoms of a section, found fast: sentences (and lines, paragraphs) with their token counts.

The chunker (:mod:`solar_rag.text.chunking`) cuts a section into atoms with a regex loop in
Python, one atom at a time (its *general path*). For the common case, normalised text whose
sentences all fit the budget, counted with :func:`estimate_tokens`, :func:`fast_atoms` finds
exactly the same atoms with one ``re.split`` and counts them with C-level ``map``s,
``str.count`` and, for ASCII text, ``bytes.translate``/``replace``, with no Python code per
atom: about three times faster. It declines (returns None) every section it cannot do
exactly, which then takes the general path. Identical atoms are what keeps chunks identical
(a change of chunks re-embeds every document): a golden test over the benchmark corpus and
property tests against the pre-speed-up chunker guard it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat
from operator import add, sub

from solar_rag.text.scripts import CJK_CHAR
from solar_rag.text.tokens import LATIN_RUN

PARAGRAPH, LINE, SENTENCE, WORD, CHARACTER = 4, 3, 2, 1, 0  # strength of a boundary
CLOSERS = "\"'”’)\\]」』》〉"  # may follow a sentence's final punctuation


@dataclass(slots=True)
class Atoms:
    """Parallel arrays describing the atoms of one section (positions in the full text)."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)  # strength of the boundary before it
    cum_start: list[int] = field(default_factory=list)  # tokens from section start to atom
    cum_end: list[int] = field(default_factory=list)  # ... to its end


# The break pattern for a section whose only whitespace is spaces and newlines, with no space
# before a newline: there it finds the same matches as the chunker's _BREAK (same spans, at
# the same positions), but every match starts with a character of a small literal class, so
# the regex engine skips all other characters (letters and spaces, most of the text) in C;
# the lookbehinds then recheck that character. (A break starting with spaces, before a
# newline, cannot occur in such a section.) One capturing group, the whole break, for
# ``re.split``; its level follows from its newlines: none sentence, one line, two or more
# paragraph.
# Linear: a punctuation run is only tried from its first character (the sent lookbehind
# refuses a start inside a run, where the rest of the run would be rescanned) and taken
# whole (possessive quantifiers over disjoint classes, so nothing that could match is given
# up): "." * n costs O(n), not O(n²).
_SPLIT = re.compile(
    r"([\n.?!…。｡．？！](?:"
    r"(?<=\n) *+\n[ \n]*"  # para
    r"|(?<=\n) *"  # line
    rf"|(?<=[.?!…])(?<![.?!…][.?!…])[.?!…]*+[{CLOSERS}]*+ +"  # sent
    rf"|(?<=[。｡．？！])[。｡．？！]*+[{CLOSERS}]*+ *"  # cjk
    rf"|(?<={CJK_CHAR}[.?!])[.?!]*+[{CLOSERS}]*+ *"  # cjk_ascii
    r"))"
)
_LEVEL_OF_NEWLINES = (SENTENCE, LINE, PARAGRAPH)
# Every character str.isspace() (and so str.split() and the regex class \s) takes for
# whitespace, except the space and the newline (a unit test checks it against str.isspace).
ODD_SPACE = re.compile("[\t\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
                       "\u205f\u3000]")
# estimate_tokens of a Latin run of n letters, minus n: (2n + 6) // 7 - n.
_LATIN_DELTA = tuple((2 * n + 6) // 7 - n for n in range(4096))
# ASCII text, costed in C: letters become L, spaces "_", an underscore of the text "#" (one
# token, like any other symbol) and the other ASCII whitespace "\t" (the general path's
# business). Then a run of n letters becomes "#" and "_" where the "#"
# (and any L left) count its (2n + 6) // 7 tokens: each block of 7 letters from the run's
# start is 2 tokens, a rest of 1-3 letters 1, of 4-6 letters 2 ("LLL" and "LL" count 1, "L"
# stays and counts 1). Every character but "_" is then one token.
_ASCII_COST = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz _\x0b\x0c\r\x1c\x1d\x1e\x1f",
    b"L" * 52 + b"_#" + b"\t" * 7)
_RUN_COSTS = ((b"LLLLLLL", b"##_____"), (b"LLL", b"#__"), (b"LL", b"#_"))


def fast_atoms(text: str, begin: int, end: int, size: int) -> Atoms | None:
    """The atoms of text[begin:end] that the chunker's general path finds with
    :func:`estimate_tokens` and a budget of ``size`` tokens, or None when the section needs
    the general path: whitespace other than spaces and newlines (the token count below
    relies on it), a space before a newline (see _SPLIT), a first character whose break
    depends on the text before the section (the CJK lookbehind), or a sentence over the
    budget (to be split)."""
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
    if max(tokens) > size:
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
            return Atoms()
        ends = list(compress(ends, keep))
        tokens = list(compress(tokens, keep))
        gaps = list(compress(gaps, keep))
        levels = list(compress(levels, keep))
        gaps[0] = 0
    cum_end = list(accumulate(map(add, gaps, tokens)))
    if begin:
        starts = list(map(add, starts, repeat(begin)))
        ends = list(map(add, ends, repeat(begin)))
    return Atoms(starts=starts, ends=ends, levels=levels,
                  cum_start=list(map(sub, cum_end, tokens)), cum_end=cum_end)
