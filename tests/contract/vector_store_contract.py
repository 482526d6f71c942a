"""Behavioural contract every VectorStore must pass (local store, OpenSearch adapter, ...).

Subclass ``VectorStoreContract`` in a ``Test*`` class and override the ``store`` fixture so it
returns a fresh, empty store of ``dimensions`` dimensions. The tests use only the
``VectorStore`` port, so they run unchanged against any backend.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence

import pytest
from solar_rag import errors
from solar_rag.domain import (
    Chunk,
    DocumentWrite,
    EmbeddedChunk,
    Filters,
    Metadata,
    SearchHit,
    SearchMode,
    SearchQuery,
    chunk_id_for,
    matches_filters,
)
from solar_rag.ports import VectorStore

DIMENSIONS = 64
SCORE_TOLERANCE = 1e-3

_WORD = re.compile(r"\w+")


def embed(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    """Deterministic bag-of-words hashing embedding, L2-normalised (never all zeros)."""
    vector = [0.0] * dimensions
    words = _WORD.findall(text.casefold()) or [text]
    for word in words:
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "big")
        vector[value % dimensions] += 1.0 if (value >> 32) & 1 else -1.0
    length = math.sqrt(sum(x * x for x in vector))
    if length == 0.0:
        vector[0], length = 1.0, 1.0
    return [x / length for x in vector]


def make_chunks(
    document_id: str,
    version: str,
    texts: Sequence[str],
    metadata: Metadata | None = None,
    dimensions: int = DIMENSIONS,
    *,
    title: str | None = None,
    section: str | None = None,
    source: str | None = None,
) -> list[EmbeddedChunk]:
    """One embedded chunk per text, ids from ``domain.chunk_id_for``."""
    chunks: list[EmbeddedChunk] = []
    offset = 0
    for index, text in enumerate(texts):
        chunk = Chunk(
            document_id=document_id,
            chunk_id=chunk_id_for(document_id, version, index),
            index=index,
            text=text,
            title=title,
            section=section,
            start=offset,
            end=offset + len(text),
            version=version,
            source=source,
            metadata=dict(metadata or {}),
        )
        offset += len(text) + 1
        chunks.append(EmbeddedChunk(chunk, embed(text, dimensions)))
    return chunks


def vector_query(text: str, *, top_k: int = 5, filters: Filters | None = None,
                 dimensions: int = DIMENSIONS) -> SearchQuery:
    return SearchQuery(text, embed(text, dimensions), SearchMode.VECTOR, top_k, filters or {})


def keyword_query(text: str, *, top_k: int = 5, filters: Filters | None = None) -> SearchQuery:
    return SearchQuery(text, None, SearchMode.KEYWORD, top_k, filters or {})


def hybrid_query(text: str, vector_text: str | None = None, *, top_k: int = 5,
                 filters: Filters | None = None, dimensions: int = DIMENSIONS) -> SearchQuery:
    vector = embed(vector_text if vector_text is not None else text, dimensions)
    return SearchQuery(text, vector, SearchMode.HYBRID, top_k, filters or {})


def ids(hits: Sequence[SearchHit]) -> list[str]:
    return [hit.chunk.chunk_id for hit in hits]


def assert_descending(hits: Sequence[SearchHit]) -> None:
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True), scores


# A corpus whose metadata exercises every filter rule: strings, ints vs floats of the same
# value, bools distinct from 0/1, list any-of, missing keys and the document_id key.
COMMON_WORD = "corpusword"
CORPUS: Mapping[str, tuple[Metadata, tuple[str, ...]]] = {
    "doc-en": (
        {"lang": "en", "year": 2024, "public": True, "rating": 4.5, "team": "search"},
        (
            f"{COMMON_WORD} retrieval augmented generation grounds answers in documents",
            f"{COMMON_WORD} vector search finds nearest neighbours by cosine similarity",
            f"{COMMON_WORD} keyword search ranks passages with bm25",
        ),
    ),
    "doc-ko": (
        {"lang": "ko", "year": 2023, "public": False, "team": "infra"},
        (
            f"{COMMON_WORD} 서울은 대한민국의 수도이다",
            f"{COMMON_WORD} 부산은 항구 도시이다",
        ),
    ),
    "doc-one": (
        {"lang": "en", "year": 1, "public": True, "flag": 1},
        (f"{COMMON_WORD} the first year of the calendar", f"{COMMON_WORD} counting from one"),
    ),
    "doc-bool": (
        {"lang": "fr", "year": 2024.0, "flag": True, "rating": 4},
        (f"{COMMON_WORD} le soleil brille sur la mer",),
    ),
    "folder/doc-slash": (
        {"lang": "de", "team": "search"},
        (f"{COMMON_WORD} ein Dokument in einem Ordner", f"{COMMON_WORD} noch ein Absatz"),
    ),
}

FILTER_CASES: list[Filters] = [
    {"lang": "en"},
    {"lang": ["ko", "fr"]},
    {"lang": "EN"},
    {"year": 2024},
    {"year": 2024.0},
    {"year": 1},
    {"year": True},
    {"public": True},
    {"public": False},
    {"flag": 1},
    {"flag": True},
    {"flag": [True, 1]},
    {"rating": 4.5},
    {"rating": 4},
    {"team": "search", "lang": "de"},
    {"lang": "en", "public": True, "year": 1},
    {"missing": "x"},
    {"lang": []},
    {"document_id": "doc-ko"},
    {"document_id": ["doc-one", "folder/doc-slash", "no-such-doc"]},
    {"document_id": "doc-en", "lang": "ko"},
]

HOSTILE_QUERIES = [
    '"unbalanced quote',
    'say "hello"',
    "NEAR(corpusword search, 2)",
    "corpus*",
    "-corpusword",
    "(corpusword OR search",
    "corpusword AND NOT search",
    "lang:en",
    "{corpusword}",
    "^corpusword",
    "corpusword\\",
    "'; DROP TABLE chunks; --",
    "a" * 2000,
]

PUNCTUATION_ONLY = ["?!", "*", "()", '"', "-", "   ", ""]


class VectorStoreContract:
    @pytest.fixture
    def dimensions(self) -> int:
        return DIMENSIONS

    @pytest.fixture
    def store(self, dimensions: int) -> VectorStore:
        raise NotImplementedError("subclasses return a fresh, empty store")

    @pytest.fixture
    def corpus(self, store: VectorStore, dimensions: int) -> dict[str, EmbeddedChunk]:
        indexed: dict[str, EmbeddedChunk] = {}
        for document_id, (metadata, texts) in CORPUS.items():
            chunks = make_chunks(document_id, "v1", texts, metadata, dimensions)
            store.upsert_document(document_id, "v1", chunks)
            indexed.update({item.chunk.chunk_id: item for item in chunks})
        return indexed

    # -- basics ------------------------------------------------------------------------

    def test_kind_is_a_known_name(self, store: VectorStore) -> None:
        assert store.kind in {"local", "opensearch"}

    def test_search_on_empty_store_returns_nothing(self, store: VectorStore) -> None:
        assert store.search(vector_query("anything")) == []
        assert store.search(keyword_query("anything")) == []
        assert store.search(hybrid_query("anything")) == []

    def test_index_then_find_the_exact_chunk(self, store: VectorStore, dimensions: int) -> None:
        texts = ["alpha beta gamma", "delta epsilon zeta", "eta theta iota"]
        metadata: Metadata = {"lang": "en", "year": 2024, "public": True, "rating": 0.5}
        chunks = make_chunks("doc-1", "v1", texts, metadata, dimensions, title="Greek",
                             section="Letters", source="s3://bucket/doc-1.txt")
        stored = store.upsert_document("doc-1", "v1", chunks)
        assert len(stored) == len(chunks)

        hits = store.search(vector_query(texts[1], top_k=1, dimensions=dimensions))
        assert len(hits) == 1
        assert hits[0].chunk == chunks[1].chunk
        assert hits[0].score == pytest.approx(1.0, abs=SCORE_TOLERANCE)
        found = hits[0].chunk.metadata
        assert type(found["year"]) is int
        assert type(found["public"]) is bool
        assert type(found["rating"]) is float
        assert type(found["lang"]) is str

    def test_pages_are_kept_beside_the_chunk(self, store: VectorStore, dimensions: int) -> None:
        """Page-level citations: each chunk's first and last page come back as written (none
        for a document without pages)."""
        from dataclasses import replace

        texts = ["revenue table quarter", "outlook growth forecast", "risks rates inflation"]
        pages = [(1, None), (2, 3), (12, None)]
        chunks = [EmbeddedChunk(replace(c.chunk, page=p, page_end=e), c.vector) for c, (p, e)
                  in zip(make_chunks("report", "v1", texts, dimensions=dimensions), pages,
                         strict=True)]
        store.upsert_document("report", "v1", chunks)
        store.upsert_document("notes", "v1", make_chunks("notes", "v1", ["plain notes"],
                                                         dimensions=dimensions))
        for text, (page, page_end) in zip(texts, pages, strict=True):
            for query in (vector_query(text, top_k=1, dimensions=dimensions),
                          keyword_query(text, top_k=1)):
                (hit,) = store.search(query)
                assert (hit.chunk.page, hit.chunk.page_end) == (page, page_end)
        (plain,) = store.search(keyword_query("plain notes", top_k=1))
        assert (plain.chunk.page, plain.chunk.page_end) == (None, None)

    def test_vector_scores_are_cosine_similarities(self, store: VectorStore,
                                                   dimensions: int) -> None:
        texts = ["red green blue", "red green yellow", "north south east west"]
        store.upsert_document("doc-1", "v1", make_chunks("doc-1", "v1", texts, None, dimensions))
        query = vector_query("red green blue", top_k=3, dimensions=dimensions)
        assert query.vector is not None
        for hit in store.search(query):
            expected = sum(a * b for a, b in zip(query.vector, embed(hit.chunk.text, dimensions),
                                                 strict=True))
            assert hit.score == pytest.approx(expected, abs=SCORE_TOLERANCE)

    # -- versions and deletion ------------------------------------------------------------

    def test_new_version_with_fewer_chunks_leaves_none_of_the_old(
        self, store: VectorStore, dimensions: int
    ) -> None:
        old = make_chunks("doc-1", "v1", [f"obsoleteword part {i}" for i in range(5)], None,
                          dimensions)
        store.upsert_document("doc-1", "v1", old)
        new = make_chunks("doc-1", "v2", ["fresh text one", "fresh text two"], None, dimensions)
        stored = store.upsert_document("doc-1", "v2", new,
                                       previous_chunk_ids=[c.chunk.chunk_id for c in old])
        assert len(stored) == 2

        every = store.search(vector_query("fresh text", top_k=50, dimensions=dimensions))
        assert sorted(ids(every)) == sorted(c.chunk.chunk_id for c in new)
        assert {hit.chunk.version for hit in every} == {"v2"}
        assert store.search(keyword_query("obsoleteword", top_k=50)) == []

    def test_reindexing_the_same_version_does_not_duplicate(
        self, store: VectorStore, dimensions: int
    ) -> None:
        chunks = make_chunks("doc-1", "v1", ["one fish", "two fish", "red fish"], None,
                             dimensions)
        store.upsert_document("doc-1", "v1", chunks)
        store.upsert_document("doc-1", "v1", chunks)
        hits = store.search(keyword_query("fish", top_k=50))
        assert sorted(ids(hits)) == sorted(c.chunk.chunk_id for c in chunks)

    def test_reindexing_one_document_leaves_others_alone(
        self, store: VectorStore, corpus: dict[str, EmbeddedChunk], dimensions: int
    ) -> None:
        store.upsert_document("doc-en", "v2",
                              make_chunks("doc-en", "v2", [f"{COMMON_WORD} replaced"], None,
                                          dimensions))
        hits = store.search(keyword_query(COMMON_WORD, top_k=50))
        expected = {cid for cid, item in corpus.items() if item.chunk.document_id != "doc-en"}
        assert {h.chunk.chunk_id for h in hits if h.chunk.document_id != "doc-en"} == expected
        assert [h.chunk.text for h in hits if h.chunk.document_id == "doc-en"] == [
            f"{COMMON_WORD} replaced"
        ]

    def test_upserting_no_chunks_removes_the_old_version(
        self, store: VectorStore, dimensions: int
    ) -> None:
        store.upsert_document("doc-1", "v1",
                              make_chunks("doc-1", "v1", ["soon empty"], None, dimensions))
        assert store.upsert_document("doc-1", "v2", []) == []
        assert store.search(keyword_query("empty", top_k=10)) == []

    def test_delete_removes_every_chunk(
        self, store: VectorStore, corpus: dict[str, EmbeddedChunk]
    ) -> None:
        doc_en = [cid for cid, item in corpus.items() if item.chunk.document_id == "doc-en"]
        assert store.delete_document("doc-en", chunk_ids=doc_en) == len(doc_en)
        hits = store.search(keyword_query(COMMON_WORD, top_k=50))
        assert "doc-en" not in {h.chunk.document_id for h in hits}
        assert len(hits) == len(corpus) - len(doc_en)
        assert store.delete_document("doc-en") == 0

    def test_delete_unknown_document_returns_zero(
        self, store: VectorStore, corpus: dict[str, EmbeddedChunk]
    ) -> None:
        assert store.delete_document("no-such-document") == 0
        assert len(store.search(keyword_query(COMMON_WORD, top_k=50))) == len(corpus)

    def test_document_ids_with_slashes(self, store: VectorStore, dimensions: int) -> None:
        chunks = make_chunks("a/b/c.txt", "v1", ["nested key text"], None, dimensions)
        store.upsert_document("a/b/c.txt", "v1", chunks)
        hits = store.search(keyword_query("nested", filters={"document_id": "a/b/c.txt"}))
        assert ids(hits) == [chunks[0].chunk.chunk_id]
        assert store.delete_document("a/b/c.txt") == 1

    # -- several documents in one call ---------------------------------------------------

    def test_batch_write_replaces_each_document_s_old_version(
        self, store: VectorStore, corpus: dict[str, EmbeddedChunk], dimensions: int
    ) -> None:
        old_en = [cid for cid, item in corpus.items() if item.chunk.document_id == "doc-en"]
        new_en = make_chunks("doc-en", "v2", [f"{COMMON_WORD} english again"], None, dimensions)
        new_doc = make_chunks("doc-new", "v1", [f"{COMMON_WORD} brand new", "second"], None,
                              dimensions)
        results = store.upsert_documents([
            DocumentWrite("doc-en", "v2", new_en, old_en),
            DocumentWrite("doc-new", "v1", new_doc),
        ])
        assert [(r.document_id, r.error) for r in results] == [("doc-en", None),
                                                              ("doc-new", None)]
        assert [len(r.stored_ids) for r in results] == [1, 2]
        hits = store.search(keyword_query(COMMON_WORD, top_k=50))
        by_document = {h.chunk.document_id: h.chunk.version for h in hits}
        assert by_document["doc-en"] == "v2" and by_document["doc-new"] == "v1"
        assert not set(old_en) & set(ids(hits))
        others = {cid for cid, item in corpus.items() if item.chunk.document_id != "doc-en"}
        assert others <= set(ids(hits))

    def test_batch_write_keeps_a_rejected_document_s_old_version(
        self, store: VectorStore, dimensions: int
    ) -> None:
        old = make_chunks("doc-1", "v1", ["kept text"], None, dimensions)
        store.upsert_document("doc-1", "v1", old)
        good = make_chunks("doc-1", "v2", ["new text"], None, dimensions)
        bad = EmbeddedChunk(good[0].chunk, good[0].vector[:-1])
        other = make_chunks("doc-2", "v1", ["other document text"], None, dimensions)
        rejected, written = store.upsert_documents([
            DocumentWrite("doc-1", "v2", [bad], [c.chunk.chunk_id for c in old]),
            DocumentWrite("doc-2", "v1", other),
        ])
        assert isinstance(rejected.error, errors.InvalidInput) and rejected.stored_ids == []
        assert written.error is None
        hits = store.search(vector_query("kept text", top_k=10, dimensions=dimensions))
        assert ids(hits)[0] == old[0].chunk.chunk_id
        assert sorted(ids(hits)) == sorted([old[0].chunk.chunk_id, other[0].chunk.chunk_id])

    def test_batch_write_refuses_one_document_twice(
        self, store: VectorStore, dimensions: int
    ) -> None:
        with pytest.raises(errors.InvalidInput):
            store.upsert_documents([
                DocumentWrite("doc-1", "v1", make_chunks("doc-1", "v1", ["a"], None, dimensions)),
                DocumentWrite("doc-1", "v2", make_chunks("doc-1", "v2", ["b"], None, dimensions)),
            ])
        assert store.search(keyword_query("a b", top_k=10)) == []
        assert store.upsert_documents([]) == []

    # -- invalid input -------------------------------------------------------------------

    def test_wrong_vector_size_is_refused_and_changes_nothing(
        self, store: VectorStore, dimensions: int
    ) -> None:
        old = make_chunks("doc-1", "v1", ["kept text"], None, dimensions)
        store.upsert_document("doc-1", "v1", old)
        good = make_chunks("doc-1", "v2", ["new text a", "new text b"], None, dimensions)
        bad = EmbeddedChunk(good[1].chunk, good[1].vector[:-1])
        with pytest.raises(errors.InvalidInput):
            store.upsert_document("doc-1", "v2", [good[0], bad])
        hits = store.search(vector_query("kept text", top_k=10, dimensions=dimensions))
        assert ids(hits) == [old[0].chunk.chunk_id]

    def test_vector_mode_needs_a_vector(self, store: VectorStore) -> None:
        with pytest.raises(errors.InvalidInput):
            store.search(SearchQuery("text", None, SearchMode.VECTOR))

    def test_query_vector_of_the_wrong_size_is_refused(
        self, store: VectorStore, corpus: dict[str, EmbeddedChunk], dimensions: int
    ) -> None:
        with pytest.raises(errors.InvalidInput):
            store.search(SearchQuery("text", [0.1] * (dimensions + 1), SearchMode.VECTOR))

    # -- filters -------------------------------------------------------------------------

    @pytest.mark.parametrize("filters", FILTER_CASES, ids=repr)
    @pytest.mark.parametrize("mode", list(SearchMode), ids=str)
    def test_filters_follow_the_reference_semantics(
        self,
        store: VectorStore,
        corpus: dict[str, EmbeddedChunk],
        dimensions: int,
        filters: Filters,
        mode: SearchMode,
    ) -> None:
        query = SearchQuery(COMMON_WORD, embed(COMMON_WORD, dimensions), mode, 50, filters)
        hits = store.search(query)
        expected = {
            cid
            for cid, item in corpus.items()
            if matches_filters(item.chunk.metadata, item.chunk.document_id, filters)
        }
        assert set(ids(hits)) == expected
        assert len(hits) == len(expected)

    def test_filtering_happens_before_top_k(self, store: VectorStore, dimensions: int) -> None:
        """A selective filter still fills top_k when enough chunks match it."""
        noise = [f"solar energy panel number {i}" for i in range(40)]
        store.upsert_document("noise", "v1",
                              make_chunks("noise", "v1", noise, {"team": "common"}, dimensions))
        rare = make_chunks("rare", "v1", ["zebra", "giraffe", "okapi", "antelope"],
                           {"team": "rare"}, dimensions)
        store.upsert_document("rare", "v1", rare)
        for mode in (SearchMode.VECTOR, SearchMode.HYBRID):
            query = SearchQuery("solar energy panel", embed("solar energy panel", dimensions),
                                mode, 3, {"team": "rare"})
            hits = store.search(query)
            assert len(hits) == 3, mode
            assert {h.chunk.document_id for h in hits} == {"rare"}

    # -- keyword and hybrid ---------------------------------------------------------------

    def test_keyword_finds_an_exact_rare_word(self, store: VectorStore, dimensions: int) -> None:
        texts = [f"ordinary filler sentence number {i}" for i in range(10)]
        texts[6] = "the xylophonist played an ordinary tune"
        chunks = make_chunks("doc-1", "v1", texts, None, dimensions)
        store.upsert_document("doc-1", "v1", chunks)
        hits = store.search(keyword_query("xylophonist"))
        assert ids(hits) == [chunks[6].chunk.chunk_id]
        assert hits[0].score > 0

    def test_keyword_searches_title_and_section(self, store: VectorStore,
                                                dimensions: int) -> None:
        chunks = make_chunks("doc-1", "v1", ["body text only"], None, dimensions,
                             title="Quarterly Pinnacle Report", section="Bluefin Results")
        store.upsert_document("doc-1", "v1", chunks)
        assert ids(store.search(keyword_query("pinnacle"))) == [chunks[0].chunk.chunk_id]
        assert ids(store.search(keyword_query("bluefin"))) == [chunks[0].chunk.chunk_id]

    def test_keyword_ranks_the_better_match_first(self, store: VectorStore,
                                                  dimensions: int) -> None:
        texts = ["granite is a rock", "granite granite granite quarry granite",
                 "basalt is another rock"]
        chunks = make_chunks("doc-1", "v1", texts, None, dimensions)
        store.upsert_document("doc-1", "v1", chunks)
        hits = store.search(keyword_query("granite quarry", top_k=5))
        assert ids(hits)[:2] == [chunks[1].chunk.chunk_id, chunks[0].chunk.chunk_id]
        assert_descending(hits)

    @pytest.mark.parametrize("text", HOSTILE_QUERIES)
    def test_query_syntax_in_user_input_is_just_text(
        self, store: VectorStore, corpus: dict[str, EmbeddedChunk], text: str,
        dimensions: int,
    ) -> None:
        for query in (keyword_query(text, top_k=50),
                      hybrid_query(text, top_k=50, dimensions=dimensions)):
            hits = store.search(query)
            assert isinstance(hits, list)
            assert all(h.chunk.chunk_id in corpus for h in hits)
            assert_descending(hits)

    @pytest.mark.parametrize("text", PUNCTUATION_ONLY)
    def test_a_query_without_words_finds_nothing(
        self, store: VectorStore, corpus: dict[str, EmbeddedChunk], text: str
    ) -> None:
        assert store.search(keyword_query(text)) == []

    def test_hybrid_ranks_a_chunk_matching_both_first(
        self, store: VectorStore, dimensions: int
    ) -> None:
        both = "photovoltaic efficiency of rooftop solar panels in winter"
        texts = [
            both,
            "photovoltaic efficiency photovoltaic efficiency measured in a laboratory report",
            "rooftop solar panels in winter need cleaning of snow",
            "rooftop solar panels in summer produce more power",
            "gardening tips for tomatoes",
            "the history of the bicycle",
        ]
        chunks = make_chunks("doc-1", "v1", texts, None, dimensions)
        store.upsert_document("doc-1", "v1", chunks)
        hits = store.search(hybrid_query("photovoltaic efficiency", both, top_k=3,
                                         dimensions=dimensions))
        assert ids(hits)[0] == chunks[0].chunk.chunk_id
        assert_descending(hits)

    def test_hybrid_includes_keyword_only_matches(self, store: VectorStore,
                                                  dimensions: int) -> None:
        texts = [f"common words about weather number {i}" for i in range(6)]
        texts.append("the quokka smiles")
        chunks = make_chunks("doc-1", "v1", texts, None, dimensions)
        store.upsert_document("doc-1", "v1", chunks)
        hits = store.search(hybrid_query("quokka", "common words about weather", top_k=5,
                                         dimensions=dimensions))
        assert chunks[-1].chunk.chunk_id in ids(hits)

    def test_hybrid_without_a_vector_works_as_keyword(self, store: VectorStore,
                                                      dimensions: int) -> None:
        chunks = make_chunks("doc-1", "v1", ["plain words", "the wombat digs"], None,
                             dimensions)
        store.upsert_document("doc-1", "v1", chunks)
        hits = store.search(SearchQuery("wombat", None, SearchMode.HYBRID, 5))
        assert ids(hits) == [chunks[1].chunk.chunk_id]

    # -- Unicode -------------------------------------------------------------------------

    def test_korean_and_unicode_round_trip_and_are_found(
        self, store: VectorStore, dimensions: int
    ) -> None:
        texts = [
            "서울은 대한민국의 수도이다. 인구는 약 천만 명이다.",
            "Café naïve façade — 東京タワー 😀 ½",
            "plain ascii text about something else",
        ]
        chunks = make_chunks("문서-1", "v1", texts, {"언어": "한국어"}, dimensions,
                             title="한국 문서")
        store.upsert_document("문서-1", "v1", chunks)

        hits = store.search(keyword_query("대한민국의"))
        assert ids(hits)[:1] == [chunks[0].chunk.chunk_id]
        assert hits[0].chunk == chunks[0].chunk

        by_vector = store.search(vector_query(texts[0], top_k=1, dimensions=dimensions))
        assert ids(by_vector) == [chunks[0].chunk.chunk_id]

        accented = store.search(keyword_query("café"))
        assert ids(accented)[:1] == [chunks[1].chunk.chunk_id]
        assert accented[0].chunk.text == texts[1]

        filtered = store.search(vector_query(texts[1], top_k=5, filters={"언어": "한국어"},
                                             dimensions=dimensions))
        assert len(filtered) == 3

    # -- ranking shape -------------------------------------------------------------------

    @pytest.mark.parametrize("mode", list(SearchMode), ids=str)
    def test_top_k_is_respected_and_scores_descend(
        self, store: VectorStore, corpus: dict[str, EmbeddedChunk], mode: SearchMode,
        dimensions: int,
    ) -> None:
        for top_k in (1, 3, 5):
            query = SearchQuery(f"{COMMON_WORD} search", embed("vector search", dimensions),
                                mode, top_k)
            hits = store.search(query)
            assert len(hits) == top_k
            assert len(set(ids(hits))) == top_k
            assert_descending(hits)
