"""Issue 7.5: chunking speed and chunk sizes, ours vs LangChain's RecursiveCharacterTextSplitter.

Both get the same parsed text. Ours budgets tokens (400 with 60 of overlap, the defaults);
the splitter counts characters (1,000 with 200 of overlap, the tutorials' values). Sizes are
reported in characters and in estimated tokens, per language: a character budget makes
Korean chunks about three times as many tokens as English ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from solar_rag.domain import ParsedDocument, SourceDocument
from solar_rag.parsing.parsers import parse_document
from solar_rag.settings import Settings
from solar_rag.text.chunking import Chunker
from solar_rag.text.tokens import estimate_tokens

from bench import corpus
from bench.results import Figure, Section, percentile
from bench.scale import Scale

TARGET_MB_PER_SECOND = 20
REPEATS = 3


def _best_of(work: Callable[[], list[str]]) -> tuple[float, list[str]]:
    best = float("inf")
    chunks: list[str] = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        chunks = work()
        best = min(best, time.perf_counter() - started)
    return best, chunks


def _distribution(name: str, chunks: list[str], langs: list[str]) -> list[dict[str, Any]]:
    rows = []
    for lang in ("en", "ko"):
        texts = [c for c, lang_of in zip(chunks, langs, strict=True) if lang_of == lang]
        if not texts:
            continue
        chars = [float(len(t)) for t in texts]
        tokens = [float(estimate_tokens(t)) for t in texts]
        rows.append({
            "chunker": name, "lang": lang, "chunks": len(texts),
            "chars p5": percentile(chars, 5), "chars p50": percentile(chars, 50),
            "chars p95": percentile(chars, 95), "tokens p5": percentile(tokens, 5),
            "tokens p50": percentile(tokens, 50), "tokens p95": percentile(tokens, 95),
            "tokens max": max(tokens),
        })
    return rows


def run(section: Section, scale: Scale) -> None:
    docs = corpus.documents(scale.chunking_documents, seed=23)
    parsed: list[tuple[SourceDocument, ParsedDocument]] = [(d, parse_document(d)) for d in docs]
    megabytes = sum(len(p.text.encode("utf-8")) for _, p in parsed) / 1e6
    settings = Settings(_env_file=None)
    chunker = Chunker(settings.chunk_size_tokens, settings.chunk_overlap_tokens)
    ours_langs: list[str] = []

    def ours() -> list[str]:
        ours_langs.clear()
        texts: list[str] = []
        for doc, p in parsed:
            pieces = chunker.chunk(doc, p, "v1")
            texts.extend(c.text for c in pieces)
            ours_langs.extend([str(doc.metadata["lang"])] * len(pieces))
        return texts

    ours_seconds, ours_chunks = _best_of(ours)
    section.notes.append(
        f"Corpus: {len(docs)} generated documents ({megabytes:.1f} MB of UTF-8 text after "
        f"parsing), best of {REPEATS} runs. Ours: {settings.chunk_size_tokens} tokens, "
        f"{settings.chunk_overlap_tokens} overlap (sentence- and section-aware). Baseline: "
        "RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).")
    section.tables["chunk sizes (characters and estimated tokens)"] = _distribution(
        "ours", ours_chunks, ours_langs)
    try:
        from langchain_text_splitters import RecursiveCharacterTextSplitter
    except ImportError as exc:
        section.add(Figure("throughput", "MB/s", megabytes / ours_seconds, None, better="higher",
                           baseline_name="RecursiveCharacterTextSplitter",
                           note=f"n/a: {exc} (install the bench group)"))
        return
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    theirs_langs: list[str] = []

    def theirs() -> list[str]:
        theirs_langs.clear()
        texts: list[str] = []
        for doc, p in parsed:
            pieces = splitter.split_text(p.text)
            texts.extend(pieces)
            theirs_langs.extend([str(doc.metadata["lang"])] * len(pieces))
        return texts

    theirs_seconds, theirs_chunks = _best_of(theirs)
    name = "RecursiveCharacterTextSplitter(1000, 200)"
    mb_per_second = megabytes / ours_seconds
    section.add(Figure("throughput", "MB/s", mb_per_second, megabytes / theirs_seconds,
                       better="higher", baseline_name=name,
                       note=f"issue 17 target ≥ {TARGET_MB_PER_SECOND} MB/s with the same chunks "
                            f"(tests/unit/test_chunking_golden.py): "
                            + ("met" if mb_per_second >= TARGET_MB_PER_SECOND else "not met")))
    section.add(Figure("chunks produced", "", len(ours_chunks), len(theirs_chunks),
                       baseline_name=name, better="lower",
                       note="fewer chunks = fewer vectors to embed and store"))
    section.tables["chunk sizes (characters and estimated tokens)"] += _distribution(
        name, theirs_chunks, theirs_langs)
