from __future__ import annotations

import pytest
from solar_rag.domain import Chunk, SearchHit
from solar_rag.retrieval.fusion import reciprocal_rank_fusion


def hit(chunk_id: str, score: float = 1.0) -> SearchHit:
    chunk = Chunk("doc", chunk_id, 0, f"text {chunk_id}", None, None, 0, 1, "v1")
    return SearchHit(chunk, score)


def test_scores_are_summed_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([[hit("a"), hit("b")], [hit("b"), hit("c")]], k=60, top_k=10)
    scores = {h.chunk.chunk_id: h.score for h in fused}
    assert scores == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62})
    assert [h.chunk.chunk_id for h in fused] == ["b", "a", "c"]


def test_a_hit_in_both_lists_beats_a_top_hit_in_one() -> None:
    vector = [hit("v1"), hit("both"), hit("v3")]
    keyword = [hit("k1"), hit("both")]
    fused = reciprocal_rank_fusion([vector, keyword], top_k=2)
    assert fused[0].chunk.chunk_id == "both"


def test_top_k_and_deduplication() -> None:
    fused = reciprocal_rank_fusion([[hit("a"), hit("a"), hit("b")], [hit("a")]], top_k=1)
    assert len(fused) == 1
    assert fused[0].chunk.chunk_id == "a"
    assert fused[0].score == pytest.approx(2 / 61)


def test_ties_break_by_best_rank_then_first_appearance() -> None:
    fused = reciprocal_rank_fusion([[hit("x")], [hit("y")]], top_k=5)
    assert [h.chunk.chunk_id for h in fused] == ["x", "y"]


def test_keeps_the_chunk_of_the_first_list() -> None:
    first = hit("a")
    fused = reciprocal_rank_fusion([[first], [hit("a", 99.0)]], top_k=1)
    assert fused[0].chunk is first.chunk


def test_empty_inputs() -> None:
    assert reciprocal_rank_fusion([], top_k=3) == []
    assert reciprocal_rank_fusion([[], []], top_k=3) == []
    assert reciprocal_rank_fusion([[hit("a")]], top_k=0) == []


def test_negative_k_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion([[hit("a")]], k=-1, top_k=1)
