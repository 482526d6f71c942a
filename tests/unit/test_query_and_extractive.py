from __future__ import annotations

import pytest
from solar_rag.adapters.extractive_answers import NOT_FOUND, PREFIX, ExtractiveAnswerGenerator
from solar_rag.adapters.llm_answers import LlmAnswerGenerator
from solar_rag.domain import Chunk, EmbeddedChunk, EmbeddingKind, SearchHit, SearchMode
from solar_rag.errors import InvalidInput
from solar_rag.services.prompt import NOT_FOUND_ANSWER
from solar_rag.services.query import QueryService
from solar_rag.services.search import SearchService

from tests.fakes.memory import FakeChatModel, FakeEmbedder, MemoryStore, bag_of_words_vector


def add(store: MemoryStore, doc_id: str, text: str, **metadata: str) -> None:
    chunk = Chunk(doc_id, f"{doc_id}-0", 0, text, doc_id.title(), None, 0, len(text), "v",
                  metadata=dict(metadata))
    store.upsert_document(doc_id, "v", [EmbeddedChunk(chunk, bag_of_words_vector(text))])


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    add(s, "sky", "The sky is blue on a clear day. Clouds are white.", lang="en")
    add(s, "grass", "Grass is green in spring.", lang="en")
    add(s, "seoul", "서울은 대한민국의 수도이다. 인구는 약 천만 명이다.", lang="ko")
    return s


def search_service(store: MemoryStore, embedder: FakeEmbedder | None = None) -> SearchService:
    return SearchService(embedder=embedder or FakeEmbedder(), store=store, max_query_chars=100,
                         max_top_k=50)


def test_search_embeds_question_with_query_model(store: MemoryStore) -> None:
    embedder = FakeEmbedder()
    hits = search_service(store, embedder).search("what colour is the sky", top_k=2)
    assert embedder.calls == [(EmbeddingKind.QUERY, ["what colour is the sky"])]
    assert hits[0].chunk.document_id == "sky"


def test_keyword_search_does_not_embed(store: MemoryStore) -> None:
    embedder = FakeEmbedder()
    search_service(store, embedder).search("grass", mode=SearchMode.KEYWORD)
    assert embedder.calls == []


@pytest.mark.parametrize(("query", "top_k"), [("", 5), ("   ", 5), ("x" * 101, 5), ("ok", 0), ("ok", 51)])
def test_bad_search_input(store: MemoryStore, query: str, top_k: int) -> None:
    with pytest.raises(InvalidInput):
        search_service(store).search(query, top_k=top_k)


def test_query_with_llm_keeps_only_real_citations(store: MemoryStore) -> None:
    chat = FakeChatModel(reply="The sky is blue [1], says the sources [9].")
    service = QueryService(search=search_service(store), generator=LlmAnswerGenerator(chat),
                           model="fake")
    answer = service.ask("what colour is the sky", top_k=2)
    assert "[9]" not in answer.text
    assert [c.index for c in answer.citations] == [1]
    assert answer.citations[0].hit.chunk.document_id == "sky"
    assert answer.usage.total_tokens == 15
    prompt = chat.received[0][-1].content
    assert "<sources>" in prompt and "The sky is blue" in prompt


def test_query_with_nothing_retrieved_says_so_without_calling_model() -> None:
    chat = FakeChatModel()
    service = QueryService(search=search_service(MemoryStore()), generator=LlmAnswerGenerator(chat),
                           model="fake")
    answer = service.ask("anything")
    assert answer.text == NOT_FOUND_ANSWER and answer.citations == () and chat.received == []


def test_filters_reach_the_store(store: MemoryStore) -> None:
    hits = search_service(store).search("is", filters={"lang": "ko"}, mode=SearchMode.KEYWORD)
    assert {h.chunk.document_id for h in hits} <= {"seoul"}


def hits_for(store: MemoryStore) -> list[SearchHit]:
    return [SearchHit(v.chunk, 1.0) for v in store.chunks.values()]


def test_extractive_quotes_matching_sentence_and_cites_it(store: MemoryStore) -> None:
    answer = ExtractiveAnswerGenerator().generate("What colour is the sky?", hits_for(store))
    assert answer.text.startswith(PREFIX)
    assert '"The sky is blue on a clear day." [1]' in answer.text
    assert [c.hit.chunk.document_id for c in answer.citations] == ["sky"]
    assert answer.model == "offline-extractive"


def test_extractive_korean(store: MemoryStore) -> None:
    answer = ExtractiveAnswerGenerator().generate("서울의 인구는?", hits_for(store))
    assert [c.hit.chunk.document_id for c in answer.citations] == ["seoul"]
    assert "인구는 약 천만 명이다." in answer.text


def test_extractive_irrelevant_question_says_not_found(store: MemoryStore) -> None:
    answer = ExtractiveAnswerGenerator().generate("quantum chromodynamics lattice", hits_for(store))
    assert answer.text == NOT_FOUND and answer.citations == ()
    assert ExtractiveAnswerGenerator().generate("what is it?", hits_for(store)).citations == ()
