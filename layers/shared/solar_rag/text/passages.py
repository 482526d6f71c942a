"""A chunk's text as the passages a reader would quote: sentences and table rows.

Lines are read the way Markdown reads them: the lines of one paragraph are one text, whatever
their hard wrapping ("Version 3.2 was released on" / "14 March 2026." is one sentence); a blank
line, a heading, a rule, a list item (quoted without its marker), a ``Label: value`` line or a
table row ends a paragraph. Paragraphs are then cut into sentences at ``.``/``!``/``?``
followed by a space and not by a lower-case letter (``e.g. the``, ``3.2``, ``Mr. Kim`` stay
whole), at CJK full stops, and after a Korean sentence ending (``…다.``, ``…요?``) even without
a space.

A table (two or more consecutive ``a | b`` rows, or one row over a ``---|---`` rule) gives one
passage per data row, read against its header: ``Priority: P1 | First response: 30 minutes``.
The header is the row above the rule when there is one, else the table's first row, unless the
table opens the text of a chunk that continues a section (its header is then in an earlier
chunk, and the rows are quoted as they are).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class PassageKind(Enum):
    SENTENCE = "sentence"
    ROW = "row"
    HEADING = "heading"  # context for the passages below it, never quoted


@dataclass(frozen=True, slots=True)
class Passage:
    text: str
    kind: PassageKind


_BLANK = re.compile(r"\s*")
_RULE_CHARS = frozenset("-=_*")
_CELL_RULE = re.compile(r":?-++:?")
_ATX_OPEN = re.compile(r"\s{0,3}+#{1,6}+\s++")
_ITEM = re.compile(r"\s*+(?:[-*+•‣◦▪·]|\d{1,3}+[.)])\s++(?=\S)")
# "Owner: Daniel Kim", "일시: 3월 2일": a field of a record, not the middle of a sentence.
_LABEL = re.compile(r"\s*+(?:[A-Z]|[^\x00-\x7f])[^:|\n]{0,40}+:\s++\S")
_ESCAPED_PIPE = "\\|"

_END = re.compile(r"(?P<mark>[.!?…]++|[。！？]++)[\"'”’)\]」』]*+(?P<space>\s*+)")
_CJK_STOPS = frozenset("。！？")
_KOREAN_ENDINGS = frozenset("다요죠까")
_ABBREVIATIONS = frozenset("mr mrs ms dr prof st vs no fig approx cf e.g i.e".split())


def passages(text: str, *, section: str | None = None, continues_section: bool = False) -> list[Passage]:
    """The passages of a chunk's ``text``, in order.

    ``section`` is the chunk's heading path (``A > B``): a first paragraph equal to its last
    heading is a heading. ``continues_section``: the chunk starts inside a section (a table at
    its very start has its header in an earlier chunk).
    """
    lines = text.split("\n")
    found: list[Passage] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            joined = " ".join(" ".join(paragraph).split())
            first = not found
            paragraph.clear()
            if first and section and _is_last_heading(joined, section):
                found.append(Passage(joined, PassageKind.HEADING))
            else:
                found.extend(Passage(s, PassageKind.SENTENCE) for s in sentences(joined))

    index = 0
    while index < len(lines):
        line = lines[index]
        table_end = _table_end(lines, index)
        if table_end > index:
            flush()
            found.extend(_table_passages(lines[index:table_end],
                                         headerless=continues_section and index == 0))
            index = table_end
            continue
        heading = _atx_heading(line)
        if heading is not None:
            flush()
            if heading.strip():
                found.append(Passage(heading.strip(), PassageKind.HEADING))
        elif _BLANK.fullmatch(line) or _is_rule(line):
            flush()
        else:
            item = _ITEM.match(line)
            if item or _LABEL.match(line):
                flush()
            paragraph.append(line[item.end():] if item else line)
        index += 1
    flush()
    return found


def sentences(paragraph: str) -> list[str]:
    """``paragraph`` (one line) cut into sentences."""
    found: list[str] = []
    start = 0
    for match in _END.finditer(paragraph):
        end = match.end()
        if end >= len(paragraph) or not _ends_sentence(paragraph, match):
            continue
        found.append(paragraph[start:end].strip())
        start = end
    rest = paragraph[start:].strip()
    if rest:
        found.append(rest)
    return [s for s in found if s]


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    mark = match.group("mark")
    if mark[0] in _CJK_STOPS:
        return True
    before = text[max(0, match.start() - 24) : match.start()]  # enough for an abbreviation
    if before and before[-1] in _KOREAN_ENDINGS:
        return True
    if not match.group("space"):
        return False
    following = text[match.end()]
    if "a" <= following <= "z":
        return False
    if mark == ".":
        word = _word_before(before)
        if word and word.lower() in _ABBREVIATIONS:
            return False
    return True


def _is_last_heading(paragraph: str, section: str) -> bool:
    return section == paragraph or section.endswith(" > " + paragraph)


def _cells(line: str) -> list[str] | None:
    if "|" not in line:
        return None
    body = line.strip().replace(_ESCAPED_PIPE, "\0")
    body = body.removeprefix("|").removesuffix("|")
    cells = [" ".join(c.replace("\0", "|").split()) for c in body.split("|")]
    return cells if len(cells) >= 2 else None


def _table_end(lines: list[str], start: int) -> int:
    """The end of the table starting at ``lines[start]``, or ``start`` when none does."""
    if _cells(lines[start]) is None or _is_table_rule(lines[start]):
        return start
    end = start
    rows = 0
    ruled = False
    while end < len(lines):
        if _is_table_rule(lines[end]):
            ruled = True
        elif _cells(lines[end]) is not None:
            rows += 1
        else:
            break
        end += 1
    return end if rows >= 2 or ruled else start


def _table_passages(lines: list[str], *, headerless: bool) -> list[Passage]:
    rows = [cells for line in lines if not _is_table_rule(line)
            if (cells := _cells(line)) is not None]
    ruled = len(lines) > 1 and _is_table_rule(lines[1])
    header: list[str] | None = None
    if ruled or not headerless:
        header, rows = rows[0], rows[1:]
    found = []
    for row in rows:
        if not any(row):
            continue
        if header is None:
            text = " | ".join(c for c in row if c)
        else:
            pairs = [(header[i] if i < len(header) else "", cell) for i, cell in enumerate(row)]
            text = " | ".join(f"{name}: {cell}" if name else cell for name, cell in pairs if cell)
        found.append(Passage(text, PassageKind.ROW))
    return found


# Line shapes recognised in plain Python rather than by regexes that would backtrack over a
# long line (each is what the regex in the comment matched with ``fullmatch``/``search``).

def _is_rule(line: str) -> bool:
    """``\\s*(?:[-=_*]\\s*){3,}``: three or more of ``-=_*``, spaces anywhere."""
    marks = "".join(line.split())
    return len(marks) >= 3 and set(marks) <= _RULE_CHARS


def _is_table_rule(line: str) -> bool:
    """A Markdown table's delimiter row: ``|? :?-+:? (| :?-+:?)+ |?`` or ``| :?-+:? |``."""
    row = line.strip()
    opened = row.startswith("|")
    closed = len(row) > 1 and row.endswith("|")
    body = row[1 if opened else 0: len(row) - 1 if closed else len(row)]
    cells = body.split("|")
    if not all(_CELL_RULE.fullmatch(cell.strip()) for cell in cells):
        return False
    return len(cells) >= 2 or (opened and closed)


def _atx_heading(line: str) -> str | None:
    """The text of an ATX heading (``\\s{0,3}#{1,6}\\s+(.*?)(?:\\s+#+)?\\s*``), or None."""
    opening = _ATX_OPEN.match(line)
    if opening is None:
        return None
    text = line[opening.end():].rstrip()
    unclosed = text.rstrip("#")
    if unclosed != text and unclosed and unclosed[-1].isspace():
        return unclosed.rstrip()
    return text


def _word_before(text: str) -> str | None:
    """The word ending ``text`` (``[A-Za-z][A-Za-z.]*$``), or None."""
    start = len(text)
    while start and (text[start - 1] == "." or ("a" <= text[start - 1].lower() <= "z"
                                                 and text[start - 1].isascii())):
        start -= 1
    word = text[start:].lstrip(".")
    return word or None
