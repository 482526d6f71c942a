"""Golden test: the chunker cuts the same inputs into exactly the same chunks, release after
release. A change of chunks (offsets, count or section) re-embeds every stored document, so
it must be a deliberate new chunking version, never a side effect of a speed-up.

The fixture ``golden/chunking_v1.json`` holds, per input set and chunker configuration, the
number of chunks and SHA-256 digests of every chunk's (document, index, start, end, section),
whole and per bucket of documents (so a failure says where to look), plus a digest of the
inputs themselves (so a failure says whether the inputs or the chunks changed). It was
written by the chunker of commit df53043, before the speed-up of issue 17:

    .venv/bin/python -m tests.unit.test_chunking_golden --write

The inputs are built here, not by ``parse_document``: the parsers evolve on their own, and
this test is about the chunker. The bench corpus (``bench/corpus.py``, the documents and seed
of ``bench/chunking.py``) is laid out the way the Markdown parser laid it out at that commit
(checked when the fixture was written); a second, adversarial set exercises what the corpus
never does: sentences and words over the budget, CJK sentence ends without a space, odd
whitespace, tiny budgets and a counter that is not additive.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from solar_rag.domain import ParsedDocument, Section, SourceDocument
from solar_rag.text.chunking import Chunker

from bench import corpus
from tests.reference.chunking_v1 import ReferenceChunker

FIXTURE = Path(__file__).parent / "golden" / "chunking_v1.json"
BENCH_DOCUMENTS, BENCH_SEED = 2000, 23  # bench/scale.py FULL.chunking_documents, bench/chunking.py
BUCKET = 100  # documents per partial digest


def characters(text: str) -> int:
    """A counter that is not additive across whitespace (spaces count): the re-count path."""
    return len(text)


# name -> (input set, size_tokens, overlap_tokens, counter or None for the default estimate)
CONFIGS: dict[str, tuple[str, int, int, Callable[[str], int] | None]] = {
    "bench-400-60": ("bench", 400, 60, None),
    "adversarial-400-60": ("adversarial", 400, 60, None),
    "adversarial-60-10": ("adversarial", 60, 10, None),
    "adversarial-16-4": ("adversarial", 16, 4, None),
    "adversarial-5-0": ("adversarial", 5, 0, None),
    "adversarial-3-2": ("adversarial", 3, 2, None),
    "adversarial-chars-200-40": ("adversarial", 200, 40, characters),
}


# -- inputs ----------------------------------------------------------------------------------

def _markdown_layout(doc: SourceDocument) -> ParsedDocument:
    """The corpus's Markdown (``# title``, ``## heading`` and paragraphs, blank-line separated)
    laid out as the parser does: each section is its heading line and body, a heading with
    no body is folded into the next section, the heading path joins titles with " > "."""
    sections: list[tuple[str | None, list[str]]] = []
    top: str | None = None
    pending: list[str] = []
    for block in doc.text.split("\n\n"):
        if block.startswith("# "):
            top = block[2:]
            pending.append(top)
        elif block.startswith("## "):
            heading = block[3:]
            path = f"{top} > {heading}" if top else heading
            sections.append((path, [*pending, heading]))
            pending = []
        elif sections:
            sections[-1][1].append(block)
        else:
            sections.append((None, [*pending, block]))
            pending = []
    return _assemble(doc.title, [(path, "\n\n".join(parts)) for path, parts in sections])


def _assemble(title: str | None, laid_out: list[tuple[str | None, str]]) -> ParsedDocument:
    built: list[Section] = []
    offset = 0
    for heading, text in laid_out:
        if built:
            offset += 2
        built.append(Section(heading=heading, text=text, start=offset))
        offset += len(text)
    return ParsedDocument(title=title, text="\n\n".join(s.text for s in built),
                          sections=tuple(built))


@functools.cache
def bench_inputs() -> tuple[tuple[SourceDocument, ParsedDocument], ...]:
    docs = corpus.documents(BENCH_DOCUMENTS, seed=BENCH_SEED)
    return tuple(
        (doc, _markdown_layout(doc) if doc.content_type == "text/markdown"
         else _assemble(doc.title, [(None, doc.text)]))
        for doc in docs)


_ADVERSARIAL_WORDS = (
    "the", "a", "retrieval", "Solar", "naïve", "Ærøskøbing", "e.g.", "Dr.", "U.S.A.", "3.14",
    "2048", "v1.2.3", "https://example.com/a/b?c=d", "x" * 40, "supercalifragilistic" * 4,
    "y" * 230, "한국어", "문서를", "검색합니다", "가" * 30, "日本語", "テスト", "中文字符" * 20,
    "🙂", "🙂" * 12, "—", "(a)", "[1]", "«quote»", "Ωμέγα", "Привет", "ไทย", "ﾃｽﾄ", "?", "…",
)
_ADVERSARIAL_SEPARATORS = (
    " ", " ", " ", " ", ". ", "? ", "! ", "다. ", "요. ", "。", "？", "！", "．", "｡", "…",
    "?\"", ".) ", "」 ", "?」", "\n", "\n\n", "\n\n\n", "\t", "  ", " \n ", "! \n", "\u3000",
    "\u00a0", "\r\n", ". \n\n", "", "", ".", "!", "?",
)


def _adversarial_text(rng: random.Random) -> str:
    length = rng.choice((1, 3, 12, 40, 150, 400))
    parts = []
    for _ in range(length):
        parts.append(rng.choice(_ADVERSARIAL_WORDS))
        parts.append(rng.choice(_ADVERSARIAL_SEPARATORS))
    if rng.random() < 0.2:  # a run of one script with no space at all
        parts.append(rng.choice(("가나다라", "abcdefg", "漢字かな", "0123456789")) * rng.randint(5, 80))
    if rng.random() < 0.3:
        parts.insert(0, rng.choice((" ", "\n", "\n\n ", "\t")))
    return "".join(parts)


@functools.cache
def adversarial_inputs() -> tuple[tuple[SourceDocument, ParsedDocument], ...]:
    rng = random.Random(17)
    inputs = []
    for index in range(100):
        texts = [_adversarial_text(rng) for _ in range(rng.choice((1, 1, 2, 4)))]
        texts = [t for t in texts if t.strip()] or ["fallback text."]
        laid_out = [(None if i == 0 and rng.random() < 0.5 else f"S{i}", t)
                    for i, t in enumerate(texts)]
        doc = SourceDocument(id=f"adv-{index:04d}", text="\n\n".join(texts))
        inputs.append((doc, _assemble(None, laid_out)))
    return tuple(inputs)


INPUTS = {"bench": bench_inputs, "adversarial": adversarial_inputs}


# -- digests ---------------------------------------------------------------------------------

def _sha(lines: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def input_digest(inputs: Iterable[tuple[SourceDocument, ParsedDocument]]) -> str:
    return _sha(
        f"{doc.id}\t{len(p.text)}\t{hashlib.sha256(p.text.encode()).hexdigest()}\t"
        + "\t".join(f"{s.start}:{len(s.text)}:{s.heading}" for s in p.sections) + "\n"
        for doc, p in inputs)


def chunk_digests(chunker: Chunker | ReferenceChunker,
                  inputs: tuple[tuple[SourceDocument, ParsedDocument], ...]) -> dict[str, object]:
    every: list[str] = []
    buckets: list[str] = []
    for first in range(0, len(inputs), BUCKET):
        lines = [f"{doc.id}\t{c.index}\t{c.start}\t{c.end}\t{c.section}\n"
                 for doc, parsed in inputs[first:first + BUCKET]
                 for c in chunker.chunk(doc, parsed, "v1")]
        buckets.append(_sha(lines)[:16])
        every.extend(lines)
    return {"documents": len(inputs), "chunks": len(every), "sha256": _sha(every),
            "buckets": buckets}


def _chunker(name: str, cls: type[Chunker] | type[ReferenceChunker]) -> Chunker | ReferenceChunker:
    _, size, overlap, counter = CONFIGS[name]
    return cls(size, overlap) if counter is None else cls(size, overlap, counter)


def _expected(name: str) -> dict[str, object]:
    sets: dict[str, dict[str, object]] = json.loads(FIXTURE.read_text())["sets"]
    return sets[name]


def _compare(name: str, actual: dict[str, object], who: str) -> None:
    expected = _expected(name)
    if actual == {k: v for k, v in expected.items() if k != "input_sha256"}:
        return
    buckets = [i for i, (a, b) in enumerate(
        zip(actual["buckets"], expected["buckets"], strict=False)) if a != b]  # type: ignore[call-overload]
    first = buckets[0] * BUCKET if buckets else None
    pytest.fail(f"{who} cuts {name} differently from the golden fixture: "
                f"{actual['chunks']} chunks vs {expected['chunks']}; first differing bucket starts "
                f"at document #{first}. Changing chunks re-embeds every document.")


# -- tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(CONFIGS))
def test_inputs_are_the_fixture_inputs(name: str) -> None:
    """If this fails, the corpus generator changed, not the chunker: fix the generator."""
    assert input_digest(INPUTS[CONFIGS[name][0]]()) == _expected(name)["input_sha256"]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_chunks_match_the_golden_fixture(name: str) -> None:
    _compare(name, chunk_digests(_chunker(name, Chunker), INPUTS[CONFIGS[name][0]]()),
             "the chunker")


@pytest.mark.parametrize("name", [n for n in CONFIGS if CONFIGS[n][0] == "adversarial"])
def test_reference_chunker_is_the_one_that_wrote_the_fixture(name: str) -> None:
    """The property tests compare with ``ReferenceChunker``; it must be the old chunker."""
    _compare(name, chunk_digests(_chunker(name, ReferenceChunker), INPUTS[CONFIGS[name][0]]()),
             "the reference chunker")


def test_fixture_covers_every_configuration_and_is_not_trivial() -> None:
    sets = json.loads(FIXTURE.read_text())["sets"]
    assert set(sets) == set(CONFIGS)
    assert sets["bench-400-60"]["documents"] == BENCH_DOCUMENTS
    assert all(entry["chunks"] > entry["documents"] for entry in sets.values())


# -- writing the fixture ---------------------------------------------------------------------

def write_fixture() -> None:
    sets = {}
    for name, (inputs_name, _, _, _) in CONFIGS.items():
        inputs = INPUTS[inputs_name]()
        sets[name] = {"input_sha256": input_digest(inputs), **chunk_digests(
            _chunker(name, Chunker), inputs)}
        print(name, sets[name]["chunks"], sets[name]["sha256"], file=sys.stderr)
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps({
        "about": "tests/unit/test_chunking_golden.py: chunk digests written by the chunker of "
                 "commit df53043 (before the speed-up of issue 17); never regenerate to make a "
                 "change of chunks pass.",
        "sets": sets,
    }, indent=1) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.unit.test_chunking_golden --write")
    write_fixture()
