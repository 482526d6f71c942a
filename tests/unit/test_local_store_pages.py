"""A local store file written before pages were tracked: the page columns are added in place
and its chunks read back without pages."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from solar_rag.adapters.local_store import LocalVectorStore
from solar_rag.domain import EmbeddedChunk

from tests.contract.vector_store_contract import DIMENSIONS, keyword_query, make_chunks


def test_an_older_file_gains_the_page_columns(tmp_path: Path) -> None:
    store = LocalVectorStore(tmp_path, space="test", dimensions=DIMENSIONS)
    store.upsert_document("old", "v1", make_chunks("old", "v1", ["written before pages"]))
    store.close()
    with sqlite3.connect(tmp_path / "rag.sqlite3") as conn:  # as an older version left it
        conn.execute("ALTER TABLE chunks DROP COLUMN page")
        conn.execute("ALTER TABLE chunks DROP COLUMN page_end")
    reopened = LocalVectorStore(tmp_path, space="test", dimensions=DIMENSIONS)
    (old,) = reopened.search(keyword_query("written before pages"))
    assert (old.chunk.page, old.chunk.page_end) == (None, None)
    (item,) = make_chunks("new", "v1", ["written with pages"])
    reopened.upsert_document("new", "v1", [EmbeddedChunk(replace(item.chunk, page=7), item.vector)])
    (new,) = reopened.search(keyword_query("written with pages", top_k=1))
    assert new.chunk.page == 7
    reopened.close()


def test_a_documents_layout_survives_in_the_stored_source(tmp_path: Path) -> None:
    """`rag reindex` parses the stored source again: a PDF's pages must come back with it."""
    from solar_rag.adapters.local_store.db import _SCHEMA
    from solar_rag.adapters.local_store.sources import read_source, write_source
    from solar_rag.domain import PageStart, ParsedDocument, Section, SourceDocument

    text = "Page one text.\n\nPage two text."
    parsed = ParsedDocument("Report", text, (Section(None, text, 0),),
                            pages=(PageStart(0, 1), PageStart(16, 2)))
    conn = sqlite3.connect(tmp_path / "s.sqlite3")
    conn.executescript(_SCHEMA)
    write_source(conn, SourceDocument("r.pdf", text, "Report", "application/pdf", parsed=parsed), "v1")
    found = read_source(conn, "r.pdf")
    assert found is not None and found[1] == "v1"
    assert found[0].parsed == parsed
    write_source(conn, SourceDocument("n.md", "plain"), "v2")
    plain = read_source(conn, "n.md")
    assert plain is not None and plain[0].parsed is None
