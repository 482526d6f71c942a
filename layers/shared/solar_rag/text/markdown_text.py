"""Markdown to readable text with heading-aware sections (stdlib only, deliberately light).

Not a full CommonMark implementation: it recognises what matters for retrieval (ATX and
setext headings, fenced code, front matter, lists, block quotes, tables, links, images,
emphasis, inline code, HTML tags, backslash escapes) and otherwise leaves text alone.
"""

from __future__ import annotations

import html
import re

from solar_rag.domain import ParsedDocument
from solar_rag.text.outline import Outline

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_THEMATIC = re.compile(r"^ {0,3}(?:(?:\*[ \t]*){3,}|(?:-[ \t]*){3,}|(?:_[ \t]*){3,})$")
_QUOTE = re.compile(r"^ {0,3}(?:>[ \t]?)+")
_BULLET = re.compile(r"^([ \t]*)[*+-][ \t]+")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]+\S+.*$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_PLACEHOLDER_BASE = 0xE000  # private-use code points stand in for escaped ASCII punctuation
_RESTORE = {_PLACEHOLDER_BASE + c: chr(c) for c in range(0x21, 0x7F)}
_RESTORE_VERBATIM = {_PLACEHOLDER_BASE + c: "\\" + chr(c) for c in range(0x21, 0x7F)}
_ASCII_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")

_INLINE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"!\[[^\]\n]*\](?:\([^)\n]*\)|\[[^\]\n]*\])"), ""),
    (re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)"), r"\1"),
    (re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]"), r"\1"),
    (re.compile(r"<((?:https?|mailto|ftp):[^>\s]+)>"), r"\1"),
    (re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"), ""),
    (re.compile(r"(\*\*|__)(?=\S)([^\n]+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=[^\s*])([^\n*]+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=[^\s_])([^\n_]+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(?=\S)([^\n]+?)(?<=\S)~~"), r"\1"),
)

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]#<>~&!|])")
_BLOCK_LIKE_LINE = re.compile(r"^([ \t]*)(?=[-=+])", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """Escape ``text`` so that :func:`parse_markdown` reproduces it literally."""
    return _BLOCK_LIKE_LINE.sub(r"\1\\", _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def _protect_escapes(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(_PLACEHOLDER_BASE + ord(m.group(1))), text)


_INLINE_CODE = re.compile(r"(`+)([^`\n]+?)\1")


def _shield(text: str) -> str:
    """Hide ASCII punctuation from the inline rules (used for inline code)."""
    return _ASCII_PUNCTUATION.sub(lambda m: chr(_PLACEHOLDER_BASE + ord(m.group())), text)


def _inline(text: str) -> str:
    text = _INLINE_CODE.sub(lambda m: _shield(m.group(2)), text)
    for pattern, replacement in _INLINE_RULES:
        text = pattern.sub(replacement, text)
    return html.unescape(text)


_PLACEHOLDERS = re.compile("[\ue021-\ue07e]")


def _restore(text: str) -> str:
    return text.translate(_RESTORE) if _PLACEHOLDERS.search(text) else text


def _heading_text(raw: str) -> str:
    return _restore(_inline(raw)).strip()


def _block_line(line: str) -> str | None:
    """Strip block-level syntax from one prose line; None for lines that are pure syntax."""
    stripped = line.lstrip()
    first = stripped[:1]
    if first in ("-", "*", "_", "|", ":", "[") and (
        _THEMATIC.match(line) or _TABLE_RULE.match(line) or _LINK_DEFINITION.match(line)
    ):
        return None
    if first == ">":
        line = _QUOTE.sub("", line)
        stripped = line.lstrip()
    if stripped[:1] in ("*", "+"):
        line = _BULLET.sub(r"\1- ", line)
    stripped = line.strip()
    if stripped.startswith("|") or stripped.endswith("|"):
        cells = [c.strip() for c in stripped.strip("|").split("|")]
        return " | ".join(cells)
    return line


def front_matter_title(text: str) -> tuple[str | None, str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return None, text
    title_match = _FRONT_TITLE.search(match.group(1))
    title = title_match.group(1).strip("\"'") if title_match else None
    return title or None, text[match.end():]


def parse_markdown(text: str, title: str | None) -> ParsedDocument:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta_title, text = front_matter_title(text)
    text = _protect_escapes(text)
    outline = Outline()
    prose: list[str] = []  # pending prose lines of the current block, inline rules not yet applied
    fence: str | None = None

    def flush() -> None:
        if prose:
            outline.text(_restore(_inline("\n".join(prose))) + "\n")
            prose.clear()

    for line in text.split("\n"):
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
                outline.text("\n")
            else:
                verbatim = line.translate(_RESTORE_VERBATIM) if _PLACEHOLDERS.search(line) else line
                outline.text(verbatim + "\n")
            continue
        fence_match = _FENCE.match(line)
        if fence_match:
            flush()
            fence = fence_match.group(1)
            outline.text("\n")
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            outline.heading(len(atx.group(1)), _heading_text(atx.group(2) or ""))
            continue
        setext = _SETEXT.match(line)
        if setext and prose and prose[-1].strip() and not _BULLET.match(prose[-1]):
            # The paragraph just above (back to the last blank line) is the heading text.
            start = len(prose)
            while start > 0 and prose[start - 1].strip():
                start -= 1
            heading_lines = prose[start:]
            del prose[start:]
            flush()
            level = 1 if setext.group(1).startswith("=") else 2
            outline.heading(level, _heading_text(" ".join(heading_lines)))
            continue
        block = _block_line(line)
        if block is not None:
            prose.append(block)
    flush()
    return outline.build(title or meta_title or outline.first_top_heading or outline.first_heading)
