"""Paragraphs, headings and tables of a .docx file as markdown (zipfile + ElementTree)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from xml.etree import ElementTree

from solar_rag.errors import UnsupportedDocument
from solar_rag.text.markdown_text import escape_markdown

MAX_PART_BYTES = 50 * 1024 * 1024  # uncompressed cap per XML part: guards against zip bombs
_HEADING_NAME = re.compile(r"^heading\s*([1-6])$", re.IGNORECASE)
_HEADING_ID = re.compile(r"^heading([1-6])$", re.IGNORECASE)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(element: ElementTree.Element, name: str) -> str | None:
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _child(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _read_part(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_PART_BYTES:
        raise UnsupportedDocument(f"DOCX part {name} is too large when uncompressed")
    with archive.open(info) as stream:
        data = stream.read(MAX_PART_BYTES + 1)  # the header's size may lie
    if len(data) > MAX_PART_BYTES:
        raise UnsupportedDocument(f"DOCX part {name} is too large when uncompressed")
    return data


def _parse_xml(data: bytes, name: str) -> ElementTree.Element:
    # Entity-expansion attacks need a DTD; Word never writes one (and always writes UTF-8),
    # so refusing both leaves nothing for the attack. External entities are never fetched.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsupportedDocument(f"DOCX part {name} declares a DTD or an unexpected encoding")
    try:
        return ElementTree.fromstring(data)  # noqa: S314 - DTDs refused above
    except ElementTree.ParseError as exc:
        raise UnsupportedDocument(f"DOCX part {name} is not valid XML: {exc}") from exc


def _style_names(archive: zipfile.ZipFile) -> dict[str, str]:
    data = _read_part(archive, "word/styles.xml")
    if data is None:
        return {}
    names: dict[str, str] = {}
    for style in _parse_xml(data, "word/styles.xml").iter():
        if _local(style.tag) != "style":
            continue
        style_id = _attr(style, "styleId")
        name_element = _child(style, "name")
        name = _attr(name_element, "val") if name_element is not None else None
        if style_id and name:
            names[style_id] = name
    return names


def _paragraph_text(paragraph: ElementTree.Element) -> str:
    parts: list[str] = []
    for element in paragraph.iter():
        name = _local(element.tag)
        if name == "t" and element.text:
            parts.append(element.text)
        elif name == "tab":
            parts.append("\t")
        elif name in ("br", "cr"):
            parts.append("\n")
        elif name == "noBreakHyphen":
            parts.append("-")
    return "".join(parts)


def _heading_level(paragraph: ElementTree.Element, styles: dict[str, str]) -> int | None:
    """1-6 for heading paragraphs, 0 for the Title style, None for body text."""
    properties = _child(paragraph, "pPr")
    if properties is None:
        return None
    style = _child(properties, "pStyle")
    style_id = _attr(style, "val") if style is not None else None
    if not style_id:
        return None
    name = styles.get(style_id, style_id)
    if name.lower() == "title" or style_id.lower() == "title":
        return 0
    match = _HEADING_NAME.match(name) or _HEADING_ID.match(style_id)
    return int(match.group(1)) if match else None


def _is_list_item(paragraph: ElementTree.Element) -> bool:
    properties = _child(paragraph, "pPr")
    return properties is not None and _child(properties, "numPr") is not None


_Block = tuple[str, int, str]  # (kind: "heading" | "item" | "row" | "text", level, text)


def _blocks(element: ElementTree.Element, styles: dict[str, str]) -> Iterator[_Block]:
    for child in element:
        name = _local(child.tag)
        if name == "p":
            text = _paragraph_text(child).strip()
            if not text:
                continue
            level = _heading_level(child, styles)
            if level is not None:
                yield "heading", level, " ".join(text.split())
            else:
                yield ("item" if _is_list_item(child) else "text"), 0, text
        elif name == "tbl":
            for row in child.iter():
                if _local(row.tag) != "tr":
                    continue
                cells = [
                    " ".join(_paragraph_text(p) for p in cell.iter() if _local(p.tag) == "p")
                    for cell in row
                    if _local(cell.tag) == "tc"
                ]
                if any(c.strip() for c in cells):
                    yield "row", 0, " | ".join(" ".join(c.split()) for c in cells)
        elif name != "sectPr":
            yield from _blocks(child, styles)  # sdt, customXml, ... wrap ordinary content


def docx_markdown(data: bytes) -> tuple[str, str | None]:
    """(markdown text, title or None) of a .docx file; UnsupportedDocument when unreadable.

    Heading 1-6 paragraphs become markdown headings and the Title style a level-1 heading
    (and the title); body text is escaped so the markdown parser keeps it literally.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsupportedDocument(f"not a valid DOCX (zip) file: {exc}") from exc
    with archive:
        try:
            document = _read_part(archive, "word/document.xml")
            if document is None:
                raise UnsupportedDocument("DOCX has no word/document.xml")
            styles = _style_names(archive)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
            raise UnsupportedDocument(f"corrupt DOCX file: {exc}") from exc
    root = _parse_xml(document, "word/document.xml")
    body = _child(root, "body")
    title: str | None = None
    out: list[str] = []
    previous_kind = ""
    for kind, level, text in _blocks(body if body is not None else root, styles):
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
