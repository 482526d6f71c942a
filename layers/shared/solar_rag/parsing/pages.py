"""Documents with pages: their text laid out with the offset where each page begins, and the
page of a chunk found from its offsets (metadata beside the chunk: its text never changes).

Two readers produce pages: the built-in PDF reader (pypdf's text per page) and Upstage
Document Parse (elements, each with its page and category). Both are laid out here so the
invariants of ``ParsedDocument`` hold (``text[s.start:s.start + len(s.text)] == s.text``,
sections joined by one blank line) and ``pages`` is exact, not guessed after the fact.
"""

from __future__ import annotations

import itertools
import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from solar_rag.domain import Chunk, LayoutElement, PageStart, ParsedDocument, Section
from solar_rag.errors import UnsupportedDocument
from solar_rag.parsing.outline import PATH_SEPARATOR
from solar_rag.text.normalize import normalize_text

SKIPPED_CATEGORIES = frozenset({"header", "footer"})
"""Running heads and page numbers: repeated on every page, noise in every chunk."""
HEADING_CATEGORIES = frozenset({"heading1", "title"})
_MARKDOWN_HEADING = re.compile(r"^(#{1,6})[ \t]+")


def paged_text(title: str | None, pages: Sequence[tuple[int, str]]) -> ParsedDocument:
    """One section of running text, page after page (the built-in PDF reader).

    The text equals ``normalize_text`` of the pages joined by blank lines (what the reader
    produced before pages were tracked), so chunk texts did not change with page tracking.
    """
    layout = _Layout()
    for page, text in pages:
        layout.add(None, page, normalize_text(text))
    return layout.build(title)


def layout_document(title: str | None, elements: Sequence[LayoutElement]) -> ParsedDocument:
    """Sections of a Document Parse result: a heading element opens a section (its path is
    the stack of open headings, the level read from the Markdown ``#`` when there is one);
    tables, figures, lists ... are its body, each element's text (Markdown or HTML for a
    table) kept whole; running heads and footers are dropped. A heading without a body of
    its own is folded into the next section, as in the other parsers."""
    layout = _Layout()
    stack: list[tuple[int, str]] = []
    first_heading: str | None = None
    for element in elements:
        if element.category in SKIPPED_CATEGORIES:
            continue
        text = normalize_text(element.text)
        if not text:
            continue
        if element.category in HEADING_CATEGORIES:
            level, heading = _heading(text)
            if not heading:
                continue
            first_heading = first_heading or heading
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, heading))
            layout.open_section(PATH_SEPARATOR.join(h for _, h in stack), element.page, heading)
            continue
        layout.add(layout.path, element.page, text)
    return layout.build(title or first_heading)


def _heading(text: str) -> tuple[int, str]:
    line = text.replace("\n", " ")
    match = _MARKDOWN_HEADING.match(line)
    if match is None:
        return 1, line.strip()
    return len(match.group(1)), line[match.end():].strip().rstrip("#").strip()


@dataclass
class _Section:
    path: str | None
    pieces: list[tuple[int, str]] = field(default_factory=list)


class _Layout:
    """Sections of (page, text) pieces; pieces of a section are joined by blank lines."""

    def __init__(self) -> None:
        self._sections: list[_Section] = [_Section(None)]
        self._pending: list[tuple[int, str]] = []  # headings still without a body
        self.path: str | None = None

    def open_section(self, path: str, page: int, heading: str) -> None:
        self.path = path
        self._pending.append((page, heading))

    def add(self, path: str | None, page: int, text: str) -> None:
        if not text:
            return
        if self._pending:
            self._sections.append(_Section(path, list(self._pending)))
            self._pending.clear()
        self._sections[-1].pieces.append((page, text))

    def build(self, title: str | None) -> ParsedDocument:
        if self._pending:
            self._sections.append(_Section(self.path, list(self._pending)))
            self._pending.clear()
        sections: list[Section] = []
        pages: list[PageStart] = []
        parts: list[str] = []
        offset = 0
        for raw in self._sections:
            if not raw.pieces:
                continue
            if parts:
                parts.append("\n\n")
                offset += 2
            start = offset
            for position, (page, text) in enumerate(raw.pieces):
                if position:
                    parts.append("\n\n")
                    offset += 2
                if not pages or pages[-1].page != page:
                    pages.append(PageStart(offset, page))
                parts.append(text)
                offset += len(text)
            sections.append(Section(raw.path, "\n\n".join(t for _, t in raw.pieces), start))
        if not sections:
            raise UnsupportedDocument("document has no text")
        clean_title = normalize_text(title).replace("\n", " ") if title else None
        return ParsedDocument(title=clean_title or None, text="".join(parts),
                              sections=tuple(sections), pages=tuple(pages))


def page_at(pages: Sequence[PageStart], offset: int) -> int | None:
    """The page on which ``offset`` of the text lies (None without pages)."""
    if not pages:
        return None
    position = bisect_right([p.start for p in pages], offset) - 1
    return pages[max(position, 0)].page


def with_pages(chunks: list[Chunk], pages: Sequence[PageStart]) -> list[Chunk]:
    """``chunks`` with the pages they start and end on (unchanged without pages)."""
    if not pages:
        return chunks
    starts = [p.start for p in pages]

    def at(offset: int) -> int:
        return pages[max(bisect_right(starts, offset) - 1, 0)].page

    result = []
    for chunk in chunks:
        first, last = at(chunk.start), at(max(chunk.start, chunk.end - 1))
        result.append(replace(chunk, page=first, page_end=last if last != first else None))
    return result


def location(chunk: Chunk) -> str | None:
    """Where a chunk came from, for people: "p. 12", "pp. 12-13", else its section path."""
    if chunk.page is not None:
        if chunk.page_end is not None and chunk.page_end != chunk.page:
            return f"pp. {chunk.page}-{chunk.page_end}"
        return f"p. {chunk.page}"
    return chunk.section


def layout_json(parsed: ParsedDocument) -> dict[str, Any]:
    """The structure of ``parsed`` without its text (a queued document carries the text)."""
    return {"title": parsed.title,
            "sections": [[s.heading, s.start, len(s.text)] for s in parsed.sections],
            "pages": [[p.start, p.page] for p in parsed.pages]}


def layout_from_json(text: str, raw: Any) -> ParsedDocument:
    """Inverse of :func:`layout_json` over ``text``; ``ValueError`` for a layout that does
    not fit the text (offsets out of range or out of order)."""
    if not isinstance(raw, dict):
        raise ValueError("layout must be an object")
    sections = []
    for heading, start, length in raw["sections"]:
        if not (isinstance(start, int) and isinstance(length, int) and start >= 0
                and start + length <= len(text)) or not (heading is None or isinstance(heading, str)):
            raise ValueError("layout section out of range")
        sections.append(Section(heading, text[start:start + length], start))
    pages = [PageStart(int(start), int(page)) for start, page in raw["pages"]]
    if any(b.start < a.start for a, b in itertools.pairwise(pages)) or any(
            not 0 <= p.start <= len(text) for p in pages):
        raise ValueError("layout pages out of order")
    title = raw.get("title")
    return ParsedDocument(title=title if isinstance(title, str) else None, text=text,
                          sections=tuple(sections), pages=tuple(pages))
