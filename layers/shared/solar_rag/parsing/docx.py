"""Paragraphs, headings and tables of a .docx file as markdown (zipfile + streaming expat).

Nothing is held but the text: each XML part is decompressed in slices and fed to an expat
parser as it comes, so a 150 KB file that inflates to 49 MB of XML costs the memory of its
text, not of an element tree (715 MB before). Every byte decompressed counts against the
document's ``ParseBudget`` (declared sizes are checked before reading, actual sizes while
reading); nesting depth and element count are checked on every element, without recursion.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from xml.parsers import expat

from solar_rag.errors import UnsupportedDocument
from solar_rag.parsing.budget import ParseBudget
from solar_rag.parsing.markdown_text import escape_markdown

MAX_PART_BYTES = 50 * 1024 * 1024  # uncompressed cap per XML part: guards against zip bombs
READ_BYTES = 1024 * 1024
"""Slices fed to expat. Expat before 2.6 rescans an unfinished token (a comment, an attribute)
from its start on every feed: with 64 KB slices a 45 MB comment took 16 s, with 1 MB slices the
rescans cost at most n² / 2 MB of scanning (linear from expat 2.6, which defers reparsing)."""
_HEADING_NAME = re.compile(r"^heading\s*([1-6])$", re.IGNORECASE)
_HEADING_ID = re.compile(r"^heading([1-6])$", re.IGNORECASE)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

_Block = tuple[str, int, str]  # (kind: "heading" | "item" | "row" | "text", level, text)


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1]  # expat joins namespace and name with a space


def _attr(attrs: dict[str, str], name: str) -> str | None:
    for key, value in attrs.items():
        if _local(key) == name:
            return value
    return None


def _part_stream(archive: zipfile.ZipFile, name: str, budget: ParseBudget) -> Iterator[bytes] | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_PART_BYTES:
        raise UnsupportedDocument(f"DOCX part {name} is too large when uncompressed")
    if info.file_size > budget.remaining_decompressed():
        budget.add_decompressed(info.file_size, f"DOCX part {name}")

    def read() -> Iterator[bytes]:
        size = 0
        with archive.open(info) as stream:  # the header's size may lie: count what comes out
            while data := stream.read(READ_BYTES):
                size += len(data)
                if size > MAX_PART_BYTES:
                    raise UnsupportedDocument(f"DOCX part {name} is too large when uncompressed")
                budget.add_decompressed(len(data), "the DOCX file")
                budget.check_time()
                yield data

    return read()


def _refuse_dtd(*_: object) -> None:
    # Entity-expansion attacks need a DTD; Word never writes one, so refusing it leaves nothing
    # for the attack. External entities are never fetched.
    raise UnsupportedDocument("DOCX part declares a DTD")


def _parse(chunks: Iterator[bytes], name: str, budget: ParseBudget,
           start: Callable[[str, dict[str, str]], None], end: Callable[[str], None],
           text: Callable[[str], None]) -> None:
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    depth = 0

    def on_start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        budget.check_depth(depth, f"DOCX part {name}")
        budget.add_elements(1, f"DOCX part {name}")
        start(_local(tag), attrs)

    def on_end(tag: str) -> None:
        nonlocal depth
        depth -= 1
        end(_local(tag))

    parser.StartElementHandler = on_start
    parser.EndElementHandler = on_end
    parser.CharacterDataHandler = text
    first = True
    try:
        for data in chunks:
            if first and data.startswith(_UTF16_BOMS):
                raise UnsupportedDocument(f"DOCX part {name} has an unexpected encoding")
            first = False
            parser.Parse(data, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise UnsupportedDocument(f"DOCX part {name} is not valid XML: {exc}") from exc


def _style_names(archive: zipfile.ZipFile, budget: ParseBudget) -> dict[str, str]:
    chunks = _part_stream(archive, "word/styles.xml", budget)
    if chunks is None:
        return {}
    names: dict[str, str] = {}
    current: list[str | None] = [None, None]  # styleId, name of the open <w:style>
    stack: list[str] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag == "style":
            current[:] = [_attr(attrs, "styleId"), None]
        elif tag == "name" and stack and stack[-1] == "style":
            current[1] = _attr(attrs, "val")
        stack.append(tag)

    def end(tag: str) -> None:
        stack.pop()
        if tag == "style":
            style_id, name = current
            if style_id and name:
                names[style_id] = name
            current[:] = [None, None]

    _parse(chunks, "word/styles.xml", budget, start, end, lambda _: None)
    return names


class _Document:
    """Event handlers that turn word/document.xml into blocks, in document order.

    A paragraph is an outermost ``<w:p>`` (text of nested ones is its own); table rows are
    reserved a slot when they open (outer rows come before the rows of tables nested in them,
    as in a pre-order walk) and filled when they close; each cell's text is the paragraphs
    directly in it, so a nested table's text appears once, in its own rows.
    """

    def __init__(self, styles: dict[str, str], budget: ParseBudget) -> None:
        self.styles = styles
        self.budget = budget
        self.blocks: list[_Block | None] = []
        self.stack: list[str] = []
        self.skip_depth = 0  # inside a block-level <w:sectPr>
        self.para_depth = -1  # stack index of the open outermost paragraph
        self.parts: list[str] = []
        self.style: str | None = None
        self.numbered = False
        self.rows: list[tuple[int, list[list[str]]]] = []  # open rows: (slot, cells)
        self.cells: list[list[str]] = []  # open cells' paragraph texts, innermost last
        self.cell_depths: list[int] = []
        self.chars = 0  # text in blocks so far
        self.pending = 0  # text in the open paragraph

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        stack = self.stack
        parent = stack[-1] if stack else ""
        stack.append(tag)
        if self.skip_depth:
            self.skip_depth += 1
            return
        if self.para_depth >= 0:
            depth = len(stack) - 1
            if tag == "tab":
                self.parts.append("\t")
            elif tag in ("br", "cr"):
                self.parts.append("\n")
            elif tag == "noBreakHyphen":
                self.parts.append("-")
            elif parent == "pPr" and depth == self.para_depth + 2:
                if tag == "pStyle":
                    self.style = _attr(attrs, "val")
                elif tag == "numPr":
                    self.numbered = True
            return
        if tag == "p":
            self.para_depth = len(stack) - 1
            self.parts, self.style, self.numbered, self.pending = [], None, False, 0
        elif tag == "tr":
            self.rows.append((len(self.blocks), []))
            self.blocks.append(None)
        elif tag == "tc" and parent == "tr" and self.rows:
            cell: list[str] = []
            self.rows[-1][1].append(cell)
            self.cells.append(cell)
            self.cell_depths.append(len(stack) - 1)
        elif tag == "sectPr" and not self.rows:
            self.skip_depth = 1

    def end(self, tag: str) -> None:
        depth = len(self.stack) - 1
        self.stack.pop()
        if self.skip_depth:
            self.skip_depth -= 1
            return
        if self.para_depth >= 0:
            if depth == self.para_depth:
                self.para_depth = -1
                self._paragraph("".join(self.parts))
            return
        if tag == "tc" and self.cell_depths and self.cell_depths[-1] == depth:
            self.cells.pop()
            self.cell_depths.pop()
        elif tag == "tr" and self.rows:
            slot, cells = self.rows.pop()
            if any(" ".join(c).strip() for c in cells):
                self._add(slot, ("row", 0, " | ".join(" ".join(" ".join(c).split())
                                                      for c in cells)))

    def text(self, data: str) -> None:
        if self.para_depth >= 0 and self.stack[-1] == "t":
            self.parts.append(data)
            self.pending += len(data)
            self.budget.check_text(self.chars + self.pending, "the DOCX file")

    def _paragraph(self, text: str) -> None:
        if self.cells:
            self.cells[-1].append(text)
            return
        if self.rows:  # a paragraph in a row but outside its cells: not table text
            return
        text = text.strip()
        if not text:
            return
        level = self._heading_level()
        if level is not None:
            block: _Block = ("heading", level, " ".join(text.split()))
        else:
            block = ("item" if self.numbered else "text", 0, text)
        self.blocks.append(None)
        self._add(len(self.blocks) - 1, block)

    def _add(self, slot: int, block: _Block) -> None:
        self.chars += len(block[2])
        self.budget.check_text(self.chars, "the DOCX file")
        self.blocks[slot] = block

    def _heading_level(self) -> int | None:
        """1-6 for heading paragraphs, 0 for the Title style, None for body text."""
        style_id = self.style
        if not style_id:
            return None
        name = self.styles.get(style_id, style_id)
        if name.lower() == "title" or style_id.lower() == "title":
            return 0
        match = _HEADING_NAME.match(name) or _HEADING_ID.match(style_id)
        return int(match.group(1)) if match else None


def docx_markdown(data: bytes, budget: ParseBudget | None = None) -> tuple[str, str | None]:
    """(markdown text, title or None) of a .docx file; UnsupportedDocument when unreadable.

    Heading 1-6 paragraphs become markdown headings and the Title style a level-1 heading
    (and the title); body text is escaped so the markdown parser keeps it literally.
    """
    budget = budget or ParseBudget()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsupportedDocument(f"not a valid DOCX (zip) file: {exc}") from exc
    with archive:
        try:
            if _part_stream(archive, "word/document.xml", budget) is None:
                raise UnsupportedDocument("DOCX has no word/document.xml")
            styles = _style_names(archive, budget)
            document = _Document(styles, budget)
            chunks = _part_stream(archive, "word/document.xml", budget)
            assert chunks is not None
            _parse(chunks, "word/document.xml", budget, document.start, document.end,
                   document.text)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
            raise UnsupportedDocument(f"corrupt DOCX file: {exc}") from exc
    title: str | None = None
    out: list[str] = []
    previous_kind = ""
    for found in document.blocks:
        if found is None:
            continue
        kind, level, text = found
        if out:
            # Consecutive table rows and list items stay together as one paragraph.
            out.append("\n" if kind == previous_kind and kind in ("row", "item") else "\n\n")
        if kind == "heading":
            if level == 0 and title is None:
                title = text
            out.append("#" * max(level, 1) + " " + escape_markdown(text))
        elif kind == "item":
            out.append("- " + escape_markdown(text))
        else:
            out.append(escape_markdown(text))
        previous_kind = kind
    return "".join(out), title
