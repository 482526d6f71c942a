"""Inputs on which the chunker once cut differently from the reference chunker
(``tests/reference/chunking_v1.py``), kept as explicit cases (the property tests found them;
their database is not shared between checkouts)."""

from __future__ import annotations

import pytest
from solar_rag.domain import ParsedDocument, Section, SourceDocument
from solar_rag.text.chunking import Chunker

from tests.reference.chunking_v1 import ReferenceChunker


def chunk_texts(chunker: Chunker | ReferenceChunker, parsed: ParsedDocument) -> list[str]:
    doc = SourceDocument(id="d", text=parsed.text, metadata={"k": "v"})
    return [chunk.text for chunk in chunker.chunk(doc, parsed, "v1")]


def test_a_section_starting_with_the_punctuation_that_ends_the_previous_one() -> None:
    """Hypothesis, 2026-12-06: the second section starts with ". " right after a section
    ending in "."; the break regex's guard against starting inside a run of punctuation saw
    the previous section's "." and refused the sentence end, so chunk 1 was ". the"."""
    parsed = ParsedDocument(title="T", text=".. the the ",
                            sections=(Section(None, ".", 0), Section(None, ". the the ", 1)))
    expected = [".", ".", "the the"]
    assert chunk_texts(ReferenceChunker(2, 0), parsed) == expected
    assert chunk_texts(Chunker(2, 0), parsed) == expected


@pytest.mark.parametrize("before", [".", "?", "!", "…", "a.", "다."])
@pytest.mark.parametrize("after", [". the the ", "?! more words.", "… x y z", "…\" quoted. end"])
@pytest.mark.parametrize(("size", "overlap"), [(2, 0), (3, 1), (400, 60)])
def test_sections_that_meet_inside_a_run_of_punctuation(before: str, after: str, size: int,
                                                        overlap: int) -> None:
    text = before + after
    parsed = ParsedDocument(title="T", text=text, sections=(
        Section(None, before, 0), Section("H", after, len(before))))
    assert (chunk_texts(Chunker(size, overlap), parsed)
            == chunk_texts(ReferenceChunker(size, overlap), parsed))
