"""Knowledge files: JSON lists of documents, indexed as one markdown document."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from solar_rag.domain import CONTENT_TYPES, Metadata, MetadataValue, SourceDocument
from solar_rag.errors import UnsupportedDocument
from solar_rag.parsing.budget import ParseBudget
from solar_rag.parsing.markdown_text import escape_markdown

_ATX_LINE = re.compile(r"^( {0,3})(#{1,5})(?=[ \t]|$)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True, slots=True)
class KnowledgeFile:
    text: str  # markdown: one "# heading" section per entry
    title: str | None
    metadata: Metadata  # the entries' metadata on which every entry agrees


def _entries(payload: object) -> Sequence[object]:
    if isinstance(payload, Mapping):
        documents = payload.get("documents")
        if not isinstance(documents, list):
            raise UnsupportedDocument('knowledge file object needs a "documents" list')
        return documents
    if isinstance(payload, list):
        return payload
    raise UnsupportedDocument('knowledge file must be {"documents": [...]} or a list of documents')


def _metadata(raw: object, n: int) -> Metadata:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise UnsupportedDocument(f"entry {n}: metadata must be an object")
    out: Metadata = {}
    for key, value in raw.items():
        if not isinstance(value, str | int | float | bool):
            raise UnsupportedDocument(
                f"entry {n}: metadata value of {key!r} must be a string, number or boolean"
            )
        out[str(key)] = value
    return out


def _optional_str(entry: Mapping[str, object], key: str, n: int) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and key == "id":
        return str(value)
    if not isinstance(value, str):
        raise UnsupportedDocument(f"entry {n}: {key} must be a string")
    return value.strip() or None


def _demote_headings(markdown: str) -> str:
    """Push an entry's own markdown headings one level below the entry heading."""
    lines = []
    fence: str | None = None
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * 3
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            line = _ATX_LINE.sub(r"\1#\2", line)
        lines.append(line)
    return "\n".join(lines)


def _body(text: str, content_type: str, budget: ParseBudget) -> str:
    if content_type == "text/markdown":
        return _demote_headings(text)
    if content_type == "text/html":
        from solar_rag.parsing.html_text import parse_html

        try:
            return escape_markdown(parse_html(text, None, budget).text)
        except UnsupportedDocument:
            return ""
    return escape_markdown(text)


def _agreed(all_metadata: list[Metadata]) -> Metadata:
    if not all_metadata:
        return {}
    first, *rest = all_metadata
    return {
        key: value
        for key, value in first.items()
        if all(key in other and type(other[key]) is type(value) and other[key] == value
               for other in rest)
    }


def parse_knowledge_file(text: str, budget: ParseBudget | None = None) -> KnowledgeFile:
    budget = budget or ParseBudget()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnsupportedDocument(f"invalid JSON: {exc}") from exc
    except RecursionError:
        # The C decoder refuses nesting past the interpreter's recursion limit with a clean
        # exception (no stack overflow); nothing here reads deeper than two levels.
        raise UnsupportedDocument("invalid JSON: nested too deeply") from None
    entries = _entries(payload)
    if not entries:
        raise UnsupportedDocument("knowledge file has no documents")
    sections: list[str] = []
    metadata: list[Metadata] = []
    titles: list[str | None] = []
    budget.add_elements(len(entries), "the knowledge file")
    for n, entry in enumerate(entries, start=1):
        budget.tick(64)
        if not isinstance(entry, Mapping):
            raise UnsupportedDocument(f"entry {n}: each document must be an object")
        body = entry.get("text")
        if not isinstance(body, str):
            raise UnsupportedDocument(f'entry {n}: "text" must be a string')
        content_type = entry.get("content_type", "text/plain")
        if content_type not in CONTENT_TYPES:
            raise UnsupportedDocument(
                f"entry {n}: content_type must be one of {', '.join(CONTENT_TYPES)}"
            )
        title = _optional_str(entry, "title", n)
        entry_id = _optional_str(entry, "id", n)
        heading = " ".join((title or entry_id or f"Entry {n}").split())
        sections.append(f"# {escape_markdown(heading)}\n\n{_body(body, str(content_type), budget)}")
        metadata.append(_metadata(entry.get("metadata"), n))
        titles.append(title)
    single_title = titles[0] if len(titles) == 1 else None
    agreed: dict[str, MetadataValue] = _agreed(metadata)
    return KnowledgeFile(text="\n\n".join(sections), title=single_title, metadata=agreed)


def knowledge_document(data_text: str, *, document_id: str, title: str | None,
                       source: str | None, metadata: Metadata,
                       budget: ParseBudget | None = None) -> SourceDocument:
    parsed = parse_knowledge_file(data_text, budget)
    return SourceDocument(
        id=document_id,
        text=parsed.text,
        title=parsed.title or title,
        content_type="text/markdown",
        source=source,
        metadata={**parsed.metadata, **metadata},
    )
