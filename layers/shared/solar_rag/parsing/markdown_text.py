"""Markdown to readable text with heading-aware sections, through a CommonMark parser.

markdown-it-py (CommonMark, plus GFM tables and strikethrough) does the parsing: it is
linear in its input, unlike hand-written regexes (whose backtracking let an 80 KB line freeze
the process for a minute). This module only walks its tokens into an :class:`Outline`:
headings open sections; paragraphs, list items, table rows, quotes and code become text;
links keep their text, autolinks their address; images, HTML tags, link definitions and
thematic breaks disappear. Blocks that are adjacent in the source stay one line apart, blocks
separated by a blank line stay a blank line apart (the chunker splits on blank lines first).

Inline content is parsed block by block (not all at once) so the tokens held at any moment
are the blocks' and one paragraph's, and the parse budget is checked between blocks.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from solar_rag.domain import ParsedDocument
from solar_rag.errors import PayloadTooLarge
from solar_rag.parsing.budget import ParseBudget
from solar_rag.parsing.html_tokens import tokens
from solar_rag.parsing.outline import Outline

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.rules_block import StateBlock
    from markdown_it.rules_inline import StateInline
    from markdown_it.token import Token

MAX_NESTING = 20
"""Block and inline nesting markdown-it follows (its CommonMark default); deeper markup is
kept as text, never recursed into."""

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#<>~&!|])")
_BLOCK_LIKE_LINE = re.compile(r"^([ \t]*)(?=[-=+])", re.MULTILINE)
_VERBATIM = frozenset({"fence", "code_block"})


def escape_markdown(text: str) -> str:
    """Escape ``text`` so that :func:`parse_markdown` reproduces it literally."""
    return _BLOCK_LIKE_LINE.sub(r"\1\\", _MARKDOWN_SPECIAL.sub(r"\\\1", text))


MAX_INLINE_TOKENS = 100_000
"""Inline tokens of one paragraph (~440 bytes each): prose never comes near; 2 MB of
``**a `` on one line would make 1.5 million of them."""
_BUDGET = "solar_rag_budget"  # key of the document's ParseBudget in markdown-it's env


def _check_inline(state: StateInline, silent: bool) -> bool:
    """First inline rule: keeps the budget honoured inside one long paragraph. Never matches."""
    budget: ParseBudget = state.env[_BUDGET]
    budget.tick(4096)
    if len(state.tokens) > MAX_INLINE_TOKENS:
        raise PayloadTooLarge(f"a paragraph of the Markdown document has more than "
                              f"{MAX_INLINE_TOKENS} inline elements")
    return False


def _check_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """First block rule: the same, between blocks. Never matches."""
    budget: ParseBudget = state.env[_BUDGET]
    budget.tick(256)
    if len(state.tokens) > budget.limits.max_elements:
        budget.add_elements(len(state.tokens), "the Markdown document")
    return False


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).enable(["table", "strikethrough"])
    md.disable(["inline", "text_join"])  # inline content is parsed per block, see _inline
    md.inline.ruler.before(md.inline.ruler.get_all_rules()[0], "solar_rag_budget", _check_inline)
    md.block.ruler.before(md.block.ruler.get_all_rules()[0], "solar_rag_budget", _check_block)
    return md


def front_matter_title(text: str) -> tuple[str | None, str]:
    """(``title:`` of a leading ``---`` YAML block or None, the text after that block)."""
    first_end = text.find("\n")
    if first_end < 0 or text[:first_end].rstrip(" \t") != "---":
        return None, text
    start = first_end + 1
    position = start
    while position <= len(text):
        end = text.find("\n", position)
        line_end = len(text) if end < 0 else end
        if text[position:line_end].rstrip(" \t") in ("---", "..."):
            title = None
            for line in text[start:max(start, position - 1)].split("\n"):
                if line.startswith("title:"):
                    title = line[len("title:"):].strip(" \t").strip("\"'") or None
                    break
            return title, text[line_end + 1:]
        if end < 0:
            break
        position = end + 1
    return None, text


def _html_text(raw: str, budget: ParseBudget) -> str:
    """Text of an HTML block inside Markdown (its tags and comments dropped)."""
    return "".join(value for kind, value, _ in tokens(raw, budget) if kind == "data")


def _inline(token: Token, env: dict[str, object], budget: ParseBudget) -> str:
    md = _parser()
    children: list[Token] = []
    md.inline.parse(token.content, md, env, children)
    budget.add_elements(len(children), "the Markdown document")
    parts: list[str] = []
    for child in children:  # an image (alt text included) is skipped: the picture is not indexed
        kind = child.type
        if kind in ("text", "text_special", "code_inline"):
            parts.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            parts.append("\n")
    return "".join(parts)


class _Walker:
    def __init__(self, outline: Outline, env: dict[str, object], budget: ParseBudget) -> None:
        self.outline = outline
        self.env = env
        self.budget = budget
        self.previous_end: int | None = None  # source line after the last block written
        self.markers: list[str] = []  # list markers waiting for their item's first block
        self.lists: list[str] = []  # markup of the open lists ("" for bullets)
        self.in_table_row = False
        self.row: list[str] = []
        self.table_map: list[int] | None = None
        self.table_rows = 0

    def _separate(self, start: int | None, blank: bool = False) -> None:
        if self.previous_end is not None:
            gap = blank or (start is not None and start > self.previous_end)
            self.outline.text("\n\n" if gap else "\n")

    def block(self, text: str, line_map: list[int] | None, verbatim: bool = False) -> None:
        self._separate(line_map[0] if line_map else None, blank=verbatim)
        if self.markers:
            text = self.markers.pop() + text.lstrip()
            self.markers.clear()
        self.outline.text(text)
        self.previous_end = line_map[1] if line_map else self.previous_end
        if verbatim:
            self.previous_end = -1  # whatever follows is a blank line away

    def heading(self, level: int, text: str) -> None:
        self.outline.heading(level, text)
        self.previous_end = None
        self.markers.clear()

    def walk(self, tokens: list[Token]) -> None:
        heading_level = 0
        for token in tokens:
            self.budget.tick(256)
            kind = token.type
            if kind == "heading_open":
                heading_level = int(token.tag[1:])
            elif kind == "inline":
                text = _inline(token, self.env, self.budget)
                if heading_level:
                    self.heading(heading_level, text)
                    heading_level = 0
                elif self.in_table_row:
                    self.row.append(" ".join(text.split()))
                else:
                    self.block(text, token.map)
            elif kind in _VERBATIM:
                self.block(token.content.rstrip("\n"), token.map, verbatim=True)
            elif kind == "html_block":
                self.block(_html_text(token.content, self.budget), token.map)
            elif kind in ("bullet_list_open", "ordered_list_open"):
                self.lists.append("" if kind == "bullet_list_open" else token.markup)
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.lists.pop()
            elif kind == "list_item_open":
                ordered = bool(self.lists and self.lists[-1])
                self.markers.append(f"{token.info}{token.markup} " if ordered else "- ")
            elif kind == "list_item_close":
                self.markers.clear()
            elif kind == "table_open":
                self.table_map, self.table_rows = token.map, 0
            elif kind == "tr_open":
                self.in_table_row, self.row = True, []
            elif kind == "tr_close":
                self.in_table_row = False
                if any(self.row):
                    line = " | ".join(self.row)
                    if self.table_rows:  # rows of one table stay on consecutive lines
                        self.outline.text("\n" + line)
                    else:
                        self.block(line, self.table_map)
                    self.table_rows += 1


def parse_markdown(text: str, title: str | None,
                   budget: ParseBudget | None = None) -> ParsedDocument:
    budget = budget or ParseBudget()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta_title, text = front_matter_title(text)
    env: dict[str, object] = {_BUDGET: budget}
    tokens = _parser().parse(text, env)
    budget.add_elements(len(tokens), "the Markdown document")
    budget.check_time()
    outline = Outline()
    _Walker(outline, env, budget).walk(tokens)
    return outline.build(title or meta_title or outline.first_top_heading or outline.first_heading)
