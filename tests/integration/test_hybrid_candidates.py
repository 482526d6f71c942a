"""Both stores take the hybrid candidate pool from one policy (settings HYBRID_*_CANDIDATES)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from solar_rag.adapters.local_store import LocalVectorStore
from solar_rag.adapters.opensearch import build_client, build_opensearch_store, init_opensearch
from solar_rag.domain import Chunk, EmbeddedChunk, SearchMode, SearchQuery
from solar_rag.retrieval.fusion import CandidatePolicy
from solar_rag.settings import Settings

from tests.fakes.opensearch_stub import OpenSearchStub
from tests.integration.opensearch_harness import chunks, settings_for, unit

pytest_plugins = ("tests.integration.opensearch_harness",)

ONE = CandidatePolicy(per_result=1, minimum=1, maximum=1)


def _local(tmp_path: Path, policy: CandidatePolicy) -> LocalVectorStore:
    store = LocalVectorStore(tmp_path / "rag.sqlite3", space="test:pool", dimensions=4,
                             candidates=policy)
    texts_and_vectors = [
        # a: first by vector, last by BM25 (long text); b: second by vector, first by BM25
        ("a", "zebra " + "filler words " * 40, [1.0, 0.0, 0.0, 0.0]),
        ("b", "zebra zebra", [0.9, 0.4358898943540674, 0.0, 0.0]),
        ("c", "zebra crossing", [0.0, 1.0, 0.0, 0.0]),
    ]
    for doc, text, vector in texts_and_vectors:
        chunk = Chunk(doc, f"{doc}-0", 0, text, None, None, 0, len(text), "v1")
        store.upsert_document(doc, "v1", [EmbeddedChunk(chunk, vector)])
    return store


def test_the_local_store_fuses_pools_of_the_policys_size(tmp_path: Path) -> None:
    query = SearchQuery("zebra", [1.0, 0.0, 0.0, 0.0], SearchMode.HYBRID, 1)
    narrow = _local(tmp_path / "narrow", ONE)
    # pools of one: a (vector) and b (BM25) tie at 1/61; the vector list comes first
    assert [h.chunk.document_id for h in narrow.search(query)] == ["a"]
    narrow.close()
    default = _local(tmp_path / "default", CandidatePolicy())
    # pools of 20 (the floor; 4 x top_k would be 4): b is 1st + 2nd, a only 1st + 3rd
    assert [h.chunk.document_id for h in default.search(query)] == ["b"]
    default.close()


def test_the_opensearch_store_asks_for_pools_of_the_policys_size(stub: OpenSearchStub) -> None:
    settings = settings_for(stub).model_copy(update={
        "hybrid_candidates_per_result": 3, "hybrid_min_candidates": 7, "hybrid_max_candidates": 11})
    init_opensearch(settings, build_client(settings))
    store = build_opensearch_store(settings)
    store.upsert_document("en", "v1", chunks("en", "v1", ["weather in seoul is sunny"]))
    for top_k, size in ((1, 7), (3, 9), (5, 11)):
        stub.requests.clear()
        store.search(SearchQuery("sunny", unit(0), SearchMode.HYBRID, top_k))
        (request,) = stub.requests
        assert request.json()["size"] == size


def test_candidate_settings_are_validated_at_start_up() -> None:
    with pytest.raises(ValidationError, match="HYBRID_MIN_CANDIDATES must not exceed"):
        Settings(_env_file=None, hybrid_min_candidates=50, hybrid_max_candidates=40)
    with pytest.raises(ValidationError):
        Settings(_env_file=None, hybrid_max_candidates=10_001)  # OpenSearch's result window
    assert Settings(_env_file=None).candidate_policy == CandidatePolicy()
