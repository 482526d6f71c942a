"""The submitted text of each document's stored version (table ``sources``): the local
source of truth `rag reindex` parses, chunks and embeds again. A document whose reader gave
its layout (pages of a PDF, Document Parse's sections) keeps it, so page citations survive a
reindex (the original bytes are not kept locally)."""

from __future__ import annotations

import json
import sqlite3

from solar_rag.domain import SourceDocument
from solar_rag.parsing.pages import layout_from_json, layout_json


def write_source(conn: sqlite3.Connection, doc: SourceDocument, version: str) -> None:
    """Inside the caller's transaction (the one writing the version's chunks)."""
    body = {"id": doc.id, "text": doc.text, "title": doc.title,
            "content_type": doc.content_type, "source": doc.source, "metadata": doc.metadata,
            "layout": layout_json(doc.parsed) if doc.parsed is not None else None}
    conn.execute("INSERT OR REPLACE INTO sources (document_id, version, document) "
                 "VALUES (?, ?, ?)",
                 (doc.id, version, json.dumps(body, ensure_ascii=False, allow_nan=False)))


def read_source(conn: sqlite3.Connection, document_id: str
                ) -> tuple[SourceDocument, str] | None:
    """The stored document and the version it was indexed as, or None."""
    row = conn.execute("SELECT document, version FROM sources WHERE document_id = ?",
                       (document_id,)).fetchone()
    if row is None:
        return None
    body = json.loads(str(row[0]))
    text = str(body["text"])
    layout = body.get("layout")
    return SourceDocument(id=str(body["id"]), text=text, title=body.get("title"),
                          content_type=str(body.get("content_type") or "text/plain"),
                          source=body.get("source"), metadata=dict(body.get("metadata") or {}),
                          parsed=layout_from_json(text, layout) if layout is not None else None,
                          ), str(row[1])
