"""HTML to readable text with heading-aware sections, on the linear tokenizer of ``html_tokens``."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from solar_rag.domain import ParsedDocument
from solar_rag.parsing.budget import ParseBudget
from solar_rag.parsing.html_tokens import tokens
from solar_rag.parsing.outline import Outline

# Elements whose content is never document text: code, styling, page chrome, embeds.
_SKIPPED = frozenset({
    "script", "style", "noscript", "nav", "header", "footer", "aside", "svg", "template",
    "iframe", "object", "embed", "canvas", "select", "button", "dialog", "math",
})
# A <header> inside these is the article's own header (its title), not page chrome.
_CONTENT_CONTAINERS = frozenset({"article", "main", "section"})
_VOID = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
})
_PARAGRAPH_BREAK = frozenset({
    "p", "blockquote", "pre", "section", "article", "main", "table", "ul", "ol", "dl",
    "figure", "hr", "details", "address", "fieldset", "form", "hgroup",
})
_LINE_BREAK = frozenset({
    "div", "br", "li", "tr", "dt", "dd", "caption", "figcaption", "summary", "legend",
    "option", "center", "body", "html", "tbody", "thead", "tfoot", "menu", "label",
})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACES = re.compile(r"\s+")


@dataclass
class _Table:
    row: list[str] | None = None
    cell: list[str] | None = None
    rows: list[str] = field(default_factory=list)


class _Stack:
    """A stack of tag names that answers "is ``tag`` open?" in O(1).

    Unclosed tags pile up in malformed HTML; scanning the stack for each end tag made 240 KB
    of ``<nav><b><b>...</i></i>...`` take seconds (quadratic). Popping down to a tag stays
    linear overall: every pushed name is popped at most once.
    """

    __slots__ = ("_counts", "_items")

    def __init__(self) -> None:
        self._items: list[str] = []
        self._counts: Counter[str] = Counter()

    def __bool__(self) -> bool:
        return bool(self._items)

    def __contains__(self, tag: str) -> bool:
        return self._counts[tag] > 0

    def push(self, tag: str) -> None:
        self._items.append(tag)
        self._counts[tag] += 1

    def pop_to(self, tag: str) -> None:
        """Pop everything down to and including the innermost ``tag`` (which must be open)."""
        while True:
            top = self._items.pop()
            self._counts[top] -= 1
            if top == tag:
                return


class _HtmlText:
    def __init__(self, budget: ParseBudget) -> None:
        self.budget = budget
        self.outline = Outline()
        self.title_parts: list[str] = []
        self._open = _Stack()  # open content containers, for the <header> rule
        self._skipping = _Stack()
        self._in_title = False
        self._pre = 0
        self._heading: tuple[int, list[str]] | None = None
        self._tables: list[_Table] = []
        self._lists: list[int | None] = []  # None for <ul>, next number for <ol>
        self._pending_newlines = 0  # line breaks owed before the next document text
        self._marker: str | None = None  # list marker waiting for its item's first text

    # -- output routing -------------------------------------------------------------
    def _emit(self, text: str) -> None:
        table = self._tables[-1] if self._tables else None
        if table is not None and table.cell is not None:
            table.cell.append(text)
        elif self._heading is not None:
            self._heading[1].append(text)
        else:
            self._document_text(text)

    def _document_text(self, text: str) -> None:
        # Breaks requested by consecutive block boundaries merge (</li><li> is one line
        # break, not a blank line); whitespace between blocks is insignificant.
        if self._pending_newlines or self._marker:
            if not text.strip():
                return
            self.outline.text("\n" * self._pending_newlines)
            self._pending_newlines = 0
            if self._marker:
                # <li><p>text</p></li> keeps "- text" on one line
                text = self._marker + text.lstrip()
                self._marker = None
        self.outline.text(text)

    def _break(self, newlines: int) -> None:
        in_cell = bool(self._tables) and self._tables[-1].cell is not None
        if in_cell or self._heading is not None:
            self._emit(" ")
        elif self._marker is None:
            self._pending_newlines = max(self._pending_newlines, newlines)

    # -- headings -------------------------------------------------------------------
    def _close_heading(self) -> None:
        if self._heading is not None:
            level, parts = self._heading
            self._heading = None
            self._pending_newlines = 0
            self._marker = None
            self.outline.heading(level, "".join(parts))

    # -- tables ---------------------------------------------------------------------
    def _close_cell(self, table: _Table) -> None:
        if table.cell is not None:
            if table.row is None:
                table.row = []
            table.row.append(_SPACES.sub(" ", "".join(table.cell)).strip())
            table.cell = None

    def _close_row(self, table: _Table) -> None:
        self._close_cell(table)
        if table.row is not None:
            if any(table.row):
                line = " | ".join(table.row)
                table.row = None
                self._emit_outside_cell(line)
            table.row = None

    def _emit_outside_cell(self, line: str) -> None:
        # A row belongs to the enclosing cell (nested table) or to the document.
        if len(self._tables) > 1 and self._tables[-2].cell is not None:
            self._tables[-2].cell.append(" " + line + " ")
        elif self._heading is not None:
            self._heading[1].append(" " + line)
        else:
            self._break(1)
            self._document_text(line)
            self._break(1)

    # -- parser callbacks -----------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skipping:
            if tag not in _VOID:
                self._skipping.push(tag)
            return
        if self._is_hidden(tag, attrs):
            if tag not in _VOID:
                self._skipping.push(tag)
            return
        if tag == "title":
            self._in_title = True
            return
        if tag in _CONTENT_CONTAINERS:
            self._open.push(tag)
        if tag in _HEADINGS:
            self._close_heading()
            self._heading = (_HEADINGS[tag], [])
            return
        if tag in _PARAGRAPH_BREAK or tag in _LINE_BREAK:
            self._close_heading()
        if tag == "pre":
            self._pre += 1
        if tag == "table":
            self._break(2)
            self._tables.append(_Table())
            return
        if self._tables:
            table = self._tables[-1]
            if tag == "tr":
                self._close_row(table)
                table.row = []
                return
            if tag in ("td", "th"):
                self._close_cell(table)
                table.cell = []
                return
        if tag in ("ul", "ol"):
            self._break(1 if self._lists else 2)
            self._lists.append(1 if tag == "ol" else None)
            return
        if tag == "li":
            marker = "- "
            if self._lists and self._lists[-1] is not None:
                number = self._lists[-1]
                marker = f"{number}. "
                self._lists[-1] = number + 1
            self._break(1)
            in_cell = bool(self._tables) and self._tables[-1].cell is not None
            if in_cell or self._heading is not None:
                self._emit(marker)
            else:
                self._marker = marker
            return
        if tag in _PARAGRAPH_BREAK:
            self._break(2)
        elif tag in _LINE_BREAK:
            self._break(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping:
            if tag in self._skipping:
                self._skipping.pop_to(tag)
            return
        if tag == "title":
            self._in_title = False
            return
        if tag in _CONTENT_CONTAINERS and tag in self._open:
            self._open.pop_to(tag)
        if tag in _HEADINGS:
            self._close_heading()
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if self._tables:
            table = self._tables[-1]
            if tag == "table":
                self._close_row(table)
                self._tables.pop()
                self._break(2)
                return
            if tag in ("td", "th"):
                self._close_cell(table)
                return
            if tag == "tr":
                self._close_row(table)
                return
        if tag in ("ul", "ol", "li"):
            self._marker = None
        if tag in ("ul", "ol") and self._lists:
            self._lists.pop()
        if tag == "li" or (tag in ("ul", "ol") and self._lists):
            # items (and lists nested in them) stay one line apart, even with <p> inside
            self._pending_newlines = min(self._pending_newlines, 1)
            self._break(1)
        elif tag in _PARAGRAPH_BREAK:
            self._break(2)
        elif tag in _LINE_BREAK:
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._in_title:
            self.title_parts.append(data)
            return
        self._emit(data if self._pre else _SPACES.sub(" ", data))

    def _is_hidden(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in _SKIPPED:
            return not (tag == "header" and self._open)
        for name, value in attrs:
            if name == "hidden":
                return True
            if name == "aria-hidden" and (value or "").lower() == "true":
                return True
            if name == "style" and value and "display:none" in value.replace(" ", "").lower():
                return True
        return False

    def feed(self, text: str) -> None:
        handlers = {"start": self.handle_starttag, "startend": self.handle_startendtag}
        for kind, value, attrs in tokens(text, self.budget):
            if kind == "data":
                self.handle_data(value)
            elif kind == "end":
                self.handle_endtag(value)
            else:
                handlers[kind](value, attrs)

    def finish(self) -> None:
        while self._tables:
            table = self._tables[-1]
            self._close_row(table)
            self._tables.pop()
        self._close_heading()


def parse_html(text: str, title: str | None, budget: ParseBudget | None = None) -> ParsedDocument:
    parser = _HtmlText(budget or ParseBudget())
    parser.feed(text)
    parser.finish()
    page_title = _SPACES.sub(" ", "".join(parser.title_parts)).strip()
    outline = parser.outline
    return outline.build(title or page_title or outline.first_top_heading)
