"""The chunker cuts every input exactly as the chunker before the speed-up of issue 17 did
(``tests/reference/chunking_v1.py``): property tests on random and adversarial text, and the
fast path's atoms against the general path's (see the golden test for the bench corpus)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solar_rag.domain import Chunk, ParsedDocument, Section, SourceDocument
from solar_rag.parsing.parsers import parse_document
from solar_rag.text.atoms import ODD_SPACE, fast_atoms
from solar_rag.text.chunking import Chunker
from solar_rag.text.tokens import estimate_tokens

from tests.reference import chunking_v1
from tests.reference.chunking_v1 import ReferenceChunker

WORDS = ["the", "a", "Retrieval", "naïve", "Ærø", "e.g.", "Dr.", "3.14", "2048", "x" * 9,
         "y" * 40, "한국어", "문서를", "검색합니다", "가" * 25, "日本語", "テスト", "中文", "🙂",
         "—", "(a)", "[1]", "«q»", "Ωμέγα", "Привет", "ﾃｽﾄ", "abc123def", "ab-cd", "ǅ",
         "snake_case", "_", "#", "__x__", "a_b#c"]
SEPARATORS = [" ", " ", " ", " ", ". ", "? ", "! ", "… ", "다. ", "요. ", "。", "？", "！", "．",
              "｡", ".", "?", "!", "…", "...", "?!", "\"", ".\" ", ".) ", "」 ", "?」", "。」",
              ".’ ", "\n", "\n\n", "\n\n\n", " \n", "\n ", " \n\n ", "\n \n", "! \n", ".\n",
              "다.\n\n", "。\n", "  ", "\t", "\u3000", "\u00a0", "\r\n", "\u2028", "", "", ""]

text_strategy = st.tuples(
    st.sampled_from(SEPARATORS),  # what the section starts with: a break, whitespace, nothing
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=120),
).map(lambda lead_pairs: lead_pairs[0] + "".join(word + sep for word, sep in lead_pairs[1]))
# Normalised-looking text (spaces and single or double newlines only): the fast path's input.
clean_strategy = st.lists(
    st.tuples(st.sampled_from(WORDS),
              st.sampled_from([" ", " ", " ", ". ", "? ", "다. ", "。", "?", ".", "\n", "\n\n",
                               ".\n\n", "。\n", "」 ", ".) "])),
    min_size=1, max_size=200,
).map(lambda pairs: "".join(word + sep for word, sep in pairs).strip() or "x")

# ASCII only (the fast path costs ASCII sections with bytes operations): Latin runs of every
# length around the multiples of 7 the estimate rounds at.
ascii_strategy = st.lists(
    st.tuples(st.one_of(st.sampled_from(["a", "Dr.", "e.g.", "3.14", "x1y", "(a)", "[1]", "--",
                                         "snake_case", "_", "#", "L", "__init__", "a#b", "'q'"]),
                        st.text(alphabet="abcXYZ_#L", min_size=1, max_size=30),
                        st.text(alphabet=st.characters(max_codepoint=127), max_size=12)),
              st.sampled_from([" ", " ", " ", ". ", "? ", "!", ".", "?", "\n", "\n\n",
                               ".\n\n", "\" ", ".) ", "...", "", "  ", "\t", "\r\n", "\x0c", " \n"])),
    min_size=1, max_size=150,
).map(lambda pairs: "".join(word + sep for word, sep in pairs))


def counter_by_characters(text: str) -> int:
    return len(text)


def parsed_from(texts: list[str], headings: list[str | None], joiner: str) -> ParsedDocument:
    sections: list[Section] = []
    offset = 0
    for text, heading in zip(texts, headings, strict=True):
        if sections:
            offset += len(joiner)
        sections.append(Section(heading=heading, text=text, start=offset))
        offset += len(text)
    return ParsedDocument(title="T", text=joiner.join(texts), sections=tuple(sections))


def cuts(chunks: list[Chunk]) -> list[tuple[int, int, int, str | None, str, str]]:
    return [(c.index, c.start, c.end, c.section, c.text, c.chunk_id) for c in chunks]


def assert_same_chunks(parsed: ParsedDocument, size: int, overlap: int, custom: bool) -> None:
    doc = SourceDocument(id="d", text=parsed.text, metadata={"k": "v"})
    if custom:
        new = Chunker(size, overlap, counter_by_characters)
        old = ReferenceChunker(size, overlap, counter_by_characters)
    else:
        new, old = Chunker(size, overlap), ReferenceChunker(size, overlap)
    assert cuts(new.chunk(doc, parsed, "v1")) == cuts(old.chunk(doc, parsed, "v1"))


sizes = st.integers(min_value=1, max_value=160)
overlap_ratios = st.floats(min_value=0.0, max_value=0.99)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(text_strategy, min_size=1, max_size=3),
       headings=st.lists(st.sampled_from([None, "Intro", "설치"]), min_size=3, max_size=3),
       joiner=st.sampled_from(["\n\n", "\n", "", " "]), size=sizes, ratio=overlap_ratios,
       custom=st.booleans())
def test_same_chunks_as_the_reference_on_adversarial_text(
        texts: list[str], headings: list[str | None], joiner: str, size: int, ratio: float,
        custom: bool) -> None:
    texts = [t for t in texts if t] or ["x"]
    # Sections may touch (joiner ""): a section starting with "?" right after a CJK
    # character is a sentence end only because of the text before the section.
    parsed = parsed_from(texts, headings[:len(texts)], joiner)
    assert_same_chunks(parsed, size, min(size - 1, int(size * ratio)), custom)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(st.one_of(clean_strategy, ascii_strategy), min_size=1, max_size=3),
       size=sizes, ratio=overlap_ratios)
def test_same_chunks_as_the_reference_on_normalised_text(texts: list[str], size: int,
                                                           ratio: float) -> None:
    parsed = parsed_from(texts, ["H"] * len(texts), "\n\n")
    assert_same_chunks(parsed, size, min(size - 1, int(size * ratio)), custom=False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(text_strategy, clean_strategy, ascii_strategy), prefix=st.sampled_from(["", "中", "a", "\n"]),
       size=sizes)
def test_fast_atoms_are_the_general_atoms(text: str, prefix: str, size: int) -> None:
    full = prefix + text
    fast = fast_atoms(full, len(prefix), len(full), size)
    # The same estimate behind a different function object takes the general path.
    general = Chunker(size, 0, lambda t: estimate_tokens(t))._atoms(full, len(prefix), len(full))
    if fast is not None:
        assert fast == general


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(text_strategy, st.text(max_size=200)))
def test_token_estimate_is_unchanged(text: str) -> None:
    assert estimate_tokens(text) == chunking_v1.estimate_tokens(text)


@pytest.mark.parametrize("text", ["Plain ASCII prose. Is it? Yes!\n\nAbc defghij klmnopqrstu.",
                                  "Non-ASCII prose: naïve café. 검색합니다. 日本語。"])
def test_normalised_sections_take_the_fast_path(text: str) -> None:
    """Otherwise the tests above would only compare the general path with itself."""
    assert fast_atoms(text, 0, len(text), 400) is not None


def test_fast_path_atoms_of_mixed_text() -> None:
    text = ("Retrieval finds passages first. Then the model answers! 검색합니다. 日本語。次\n\n"
            "Second paragraph (with 2048 tokens?) ends here.\nA line.")
    atoms = fast_atoms(text, 0, len(text), 400)
    assert atoms is not None
    assert [text[s:e] for s, e in zip(atoms.starts, atoms.ends, strict=True)] == [
        "Retrieval finds passages first.", "Then the model answers!", "검색합니다.", "日本語。",
        "次", "Second paragraph (with 2048 tokens?)", "ends here.", "A line."]
    assert atoms.levels == [4, 2, 2, 2, 2, 4, 2, 3]


@pytest.mark.parametrize(("text", "begin"), [
    ("a\tb. c", 0),            # a tab: str.split() and " " disagree
    ("a\u3000b. c", 0),        # an ideographic space
    ("end. \nnext", 0),        # a space before a newline
    ("中?次 더", 1),             # "?" after a CJK character before the section
    ("word " * 300, 0),        # a sentence over the budget: split by the general path
])
def test_fast_path_declines_what_it_cannot_do_exactly(text: str, begin: int) -> None:
    assert fast_atoms(text, begin, len(text), 100) is None


def test_odd_space_is_every_whitespace_but_space_and_newline() -> None:
    odd = [c for c in map(chr, range(0x110000)) if c.isspace() and c not in " \n"]
    matched = [c for c in map(chr, range(0x110000)) if ODD_SPACE.match(c)]
    assert matched == odd


REPOSITORY = Path(__file__).resolve().parents[2]
REAL_DOCUMENTS = sorted([REPOSITORY / "README.md", REPOSITORY / "bench" / "README.md",
                         *(REPOSITORY / "docs").glob("*.md")])


@pytest.mark.parametrize(("size", "overlap"), [(400, 60), (100, 20), (30, 5), (8, 2)])
def test_same_chunks_as_the_reference_on_this_repositorys_documents(size: int, overlap: int) -> None:
    """Real Markdown (code, tables, lists, URLs, snake_case, non-ASCII punctuation)."""
    assert len(REAL_DOCUMENTS) > 3
    for path in REAL_DOCUMENTS:
        doc = SourceDocument(id=path.name, text=path.read_text(encoding="utf-8"),
                             content_type="text/markdown")
        parsed = parse_document(doc)
        assert (Chunker(size, overlap).chunk(doc, parsed, "v")
                == ReferenceChunker(size, overlap).chunk(doc, parsed, "v")), path
