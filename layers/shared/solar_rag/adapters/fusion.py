"""Reciprocal rank fusion: merge ranked hit lists whose scores are not comparable.

Each hit earns ``1 / (k + rank)`` (rank from 1) in every list it appears in; hits are ranked
by the sum. Used for hybrid (BM25 + k-NN) search by the local store, and by the OpenSearch
adapter where no search pipeline is available.
"""

from __future__ import annotations

from collections.abc import Sequence

from solar_rag.domain import SearchHit

DEFAULT_K = 60


def reciprocal_rank_fusion(
    ranked_lists: Sequence[Sequence[SearchHit]], *, k: int = DEFAULT_K, top_k: int
) -> list[SearchHit]:
    """Fused top ``top_k`` hits, deduplicated by chunk id; ``score`` is the fused score.

    Ties are broken by the best rank a hit reached in any list, then by first appearance
    (earlier lists first), so the result is deterministic.
    """
    if k < 0:
        raise ValueError("k must be >= 0")
    if top_k <= 0:
        return []
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    first_seen: dict[str, SearchHit] = {}
    for hits in ranked_lists:
        seen_here: set[str] = set()
        for rank, hit in enumerate(hits, start=1):
            chunk_id = hit.chunk.chunk_id
            if chunk_id in seen_here:  # a list should not repeat a chunk; count it once
                continue
            seen_here.add(chunk_id)
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (k + rank)
            best_rank[chunk_id] = min(best_rank.get(chunk_id, rank), rank)
            first_seen.setdefault(chunk_id, hit)
    order = {chunk_id: i for i, chunk_id in enumerate(first_seen)}
    ranked = sorted(scores, key=lambda c: (-scores[c], best_rank[c], order[c]))
    return [SearchHit(first_seen[c].chunk, scores[c]) for c in ranked[:top_k]]
