"""rag eval's arithmetic against values computed by hand (solar_rag/evaluation/metrics.py)."""

from __future__ import annotations

import math

import pytest
from solar_rag.evaluation import metrics


def test_documents_are_deduplicated_in_order_of_their_best_chunk() -> None:
    assert metrics.distinct_documents(["a", "a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_hit_at_k() -> None:
    ranked = ["a", "b", "c", "d"]
    relevant = {"c": 1}
    assert metrics.hit_at(ranked, relevant, 1) == 0.0
    assert metrics.hit_at(ranked, relevant, 2) == 0.0
    assert metrics.hit_at(ranked, relevant, 3) == 1.0
    assert metrics.hit_at(ranked, relevant, 50) == 1.0
    assert metrics.hit_at([], relevant, 5) == 0.0
    with pytest.raises(ValueError, match="at least 1"):
        metrics.hit_at(ranked, relevant, 0)


def test_reciprocal_rank_is_one_over_the_first_relevant_rank() -> None:
    assert metrics.reciprocal_rank(["a", "b", "c"], {"c": 1, "b": 1}) == 0.5
    assert metrics.reciprocal_rank(["a", "b", "c"], {"c": 1}) == pytest.approx(1 / 3)
    assert metrics.reciprocal_rank(["a", "b", "c"], {"c": 1}, k=2) == 0.0
    assert metrics.reciprocal_rank(["a"], {"z": 1}) == 0.0
    # MRR over three questions: ranks 1, 3 and none -> (1 + 1/3 + 0) / 3
    rrs = [metrics.reciprocal_rank(["x"], {"x": 1}), metrics.reciprocal_rank(["a", "b", "x"], {"x": 1}),
           metrics.reciprocal_rank(["a"], {"x": 1})]
    assert metrics.mean(rrs) == pytest.approx(4 / 9)


def test_binary_ndcg() -> None:
    # One relevant document at rank 3: DCG = 1/log2(4) = 0.5, ideal DCG = 1/log2(2) = 1.
    assert metrics.ndcg(["a", "b", "c", "d"], {"c": 1}, 5) == pytest.approx(0.5)
    # Two relevant at ranks 1 and 3: (1 + 0.5) / (1 + 1/log2(3)) = 1.5 / 1.6309298
    assert metrics.ndcg(["r1", "x", "r2"], {"r1": 1, "r2": 1}, 5) == pytest.approx(0.9197208, abs=1e-6)
    assert metrics.ndcg(["r1", "r2"], {"r1": 1, "r2": 1}, 5) == pytest.approx(1.0)
    assert metrics.ndcg(["x", "y"], {"r": 1}, 5) == 0.0


def test_graded_ndcg_uses_linear_gain_and_truncates_the_ideal_ranking_at_k() -> None:
    relevant = {"a": 2, "b": 1}
    # b (grade 1) first, then a (grade 2): DCG = 1/1 + 2/log2(3) = 2.2618595;
    # ideal: a then b = 2/1 + 1/log2(3) = 2.6309298; nDCG = 0.8597186.
    assert metrics.ndcg(["b", "a", "x"], relevant, 5) == pytest.approx(0.8597186, abs=1e-6)
    assert metrics.ndcg(["a", "b"], relevant, 5) == pytest.approx(1.0)
    # k = 1: DCG = 1 (b), ideal = 2 (a alone).
    assert metrics.ndcg(["b", "a"], relevant, 1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="relevant"):
        metrics.ndcg(["a"], {}, 5)


def test_dcg_matches_the_textbook_formula() -> None:
    assert metrics.dcg([3, 2, 3, 0, 1, 2]) == pytest.approx(
        3 + 2 / math.log2(3) + 3 / 2 + 0 + 1 / math.log2(6) + 2 / math.log2(7))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(10, 0, -1)]  # 10..1, unsorted on purpose
    assert metrics.percentile(values, 50) == 5.0
    assert metrics.percentile(values, 90) == 9.0
    assert metrics.percentile(values, 95) == 10.0
    assert metrics.percentile(values, 100) == 10.0
    assert metrics.percentile(values, 0) == 1.0
    assert metrics.percentile([3.0, 1.0, 2.0], 50) == 2.0  # rank ceil(1.5) = 2
    assert metrics.percentile([7.5], 99) == 7.5
    with pytest.raises(ValueError, match="no values"):
        metrics.percentile([], 50)
    with pytest.raises(ValueError, match="within"):
        metrics.percentile(values, 100.5)


def test_citation_markers_as_the_service_writes_them() -> None:
    assert metrics.citation_markers("A [1]. B [2, 3] and [4;1]. Not a marker: [x] or [].") == [1, 2, 3, 4, 1]
    assert metrics.citation_markers("no markers") == []


def test_facts_match_any_spelling_after_normalising() -> None:
    answer = "Receipts are due within 30\u00a0Days; the cap is ＵＳＤ 260 [1]. 연차는 15일이다. 이서연은 대표다."
    assert metrics.facts_found(answer, [("30 days",), ("USD 260", "$260"), ("15일",), ("5 days", "5일"),
                                        ("이서연",), ("260",), ("26",), ("Day",)]) == [
        True, True, True, False, True, True, False, False]
    assert metrics.facts_found("1,240 records; 120 languages", [("1,240",), ("240",), ("12",)]) == [
        True, False, False]


def test_cost_is_per_million_tokens() -> None:
    assert metrics.cost_usd(1_000_000, 0, input_per_million=0.15, output_per_million=0.6) == pytest.approx(0.15)
    assert metrics.cost_usd(2000, 500, input_per_million=0.15, output_per_million=0.6) == pytest.approx(0.0006)


def test_mean_of_nothing_is_none() -> None:
    assert metrics.mean([]) is None
    assert metrics.mean([1.0, 0.0]) == 0.5
