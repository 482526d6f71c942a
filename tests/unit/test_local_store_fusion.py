from __future__ import annotations

import pytest
from solar_rag.domain import Chunk, SearchHit
from solar_rag.retrieval.fusion import RRF_K, CandidatePolicy, reciprocal_rank_fusion


def hit(chunk_id: str, score: float = 1.0) -> SearchHit:
    chunk = Chunk("doc", chunk_id, 0, f"text {chunk_id}", None, None, 0, 1, "v1")
    return SearchHit(chunk, score)


def fuse(lists: list[list[SearchHit]], **kwargs: int) -> list[SearchHit]:
    """Fusion of hits as the OpenSearch adapter calls it."""
    fused = reciprocal_rank_fusion(lists, key=lambda h: h.chunk.chunk_id, **kwargs)
    return [SearchHit(h.chunk, score) for h, score in fused]


def test_scores_are_summed_reciprocal_ranks() -> None:
    fused = fuse([[hit("a"), hit("b")], [hit("b"), hit("c")]], k=60, top_k=10)
    scores = {h.chunk.chunk_id: h.score for h in fused}
    assert scores == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62})
    assert [h.chunk.chunk_id for h in fused] == ["b", "a", "c"]


def test_the_rank_constant_is_60_by_default() -> None:
    assert RRF_K == 60
    assert fuse([[hit("a")]], top_k=1)[0].score == pytest.approx(1 / 61)


def test_a_hit_in_both_lists_beats_a_top_hit_in_one() -> None:
    vector = [hit("v1"), hit("both"), hit("v3")]
    keyword = [hit("k1"), hit("both")]
    fused = fuse([vector, keyword], top_k=2)
    assert fused[0].chunk.chunk_id == "both"


def test_top_k_and_deduplication() -> None:
    fused = fuse([[hit("a"), hit("a"), hit("b")], [hit("a")]], top_k=1)
    assert len(fused) == 1
    assert fused[0].chunk.chunk_id == "a"
    assert fused[0].score == pytest.approx(2 / 61)


def test_ties_break_by_best_rank_then_first_appearance() -> None:
    fused = fuse([[hit("x")], [hit("y")]], top_k=5)
    assert [h.chunk.chunk_id for h in fused] == ["x", "y"]
    rows = reciprocal_rank_fusion([[(7, 0.1), (3, 0.2)], [(3, 9.0), (7, 9.0)]],
                                  key=lambda r: r[0], top_k=5)
    assert [row for row, _ in rows] == [(7, 0.1), (3, 0.2)]  # equal sums, equal best ranks


def test_keeps_the_item_of_the_first_list() -> None:
    first = hit("a")
    fused = fuse([[first], [hit("a", 99.0)]], top_k=1)
    assert fused[0].chunk is first.chunk


def test_empty_inputs() -> None:
    assert fuse([], top_k=3) == []
    assert fuse([[], []], top_k=3) == []
    assert fuse([[hit("a")]], top_k=0) == []


def test_negative_k_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be"):
        fuse([[hit("a")]], k=-1, top_k=1)


@pytest.mark.parametrize(("top_k", "expected"), [(1, 20), (5, 20), (10, 40), (25, 100), (50, 100)])
def test_default_candidate_policy_is_the_opensearch_adapters(top_k: int, expected: int) -> None:
    assert CandidatePolicy().count(top_k) == expected


def test_candidates_never_fewer_than_the_results_asked_for() -> None:
    assert CandidatePolicy(per_result=1, minimum=1, maximum=10).count(50) == 50


def test_an_inconsistent_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="candidate policy"):
        CandidatePolicy(per_result=4, minimum=200, maximum=100)
    with pytest.raises(ValueError, match="candidate policy"):
        CandidatePolicy(per_result=0)
