"""Assembles headings and body text into a ParsedDocument with exact section offsets."""

from __future__ import annotations

from dataclasses import dataclass, field

from solar_rag.domain import ParsedDocument, Section
from solar_rag.errors import UnsupportedDocument
from solar_rag.text.normalize import normalize_text

PATH_SEPARATOR = " > "


@dataclass
class _RawSection:
    path: str | None
    heading: str | None
    parts: list[str] = field(default_factory=list)


class Outline:
    """Collects text under a stack of headings; ``build`` normalises and lays it out.

    Each section's text starts with its own heading line (so a chunk keeps the words of its
    heading) followed by its body. A heading with no body of its own (a chapter heading
    directly followed by a sub-heading) is folded into the next section instead of becoming
    a chunk of one line.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self._sections: list[_RawSection] = [_RawSection(None, None)]
        self.first_heading: str | None = None
        self.first_top_heading: str | None = None

    def heading(self, level: int, text: str) -> None:
        text = normalize_text(text).replace("\n", " ")
        if not text:
            return
        if self.first_heading is None:
            self.first_heading = text
        if level == 1 and self.first_top_heading is None:
            self.first_top_heading = text
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        path = PATH_SEPARATOR.join(t for _, t in self._stack)
        self._sections.append(_RawSection(path, text))

    def text(self, text: str) -> None:
        self._sections[-1].parts.append(text)

    def build(self, title: str | None) -> ParsedDocument:
        laid_out: list[tuple[str | None, str]] = []
        pending: list[str] = []
        pending_path: str | None = None
        for raw in self._sections:
            body = normalize_text("".join(raw.parts))
            if raw.heading is not None and not body:
                pending.append(raw.heading)
                pending_path = raw.path
                continue
            lines = [*pending, raw.heading] if raw.heading is not None else pending
            if not body and not lines:
                continue
            laid_out.append((raw.path, "\n\n".join([*lines, body] if body else lines)))
            pending = []
        if pending:
            laid_out.append((pending_path, "\n\n".join(pending)))
        return assemble(title, laid_out)


def assemble(title: str | None, sections: list[tuple[str | None, str]]) -> ParsedDocument:
    """Join already-normalised section texts with blank lines, recording their offsets."""
    built: list[Section] = []
    offset = 0
    for heading, text in sections:
        if not text:
            continue
        if built:
            offset += 2  # the "\n\n" separator
        built.append(Section(heading=heading, text=text, start=offset))
        offset += len(text)
    if not built:
        raise UnsupportedDocument("document has no text")
    full = "\n\n".join(s.text for s in built)
    clean_title = normalize_text(title).replace("\n", " ") if title else None
    return ParsedDocument(title=clean_title or None, text=full, sections=tuple(built))
