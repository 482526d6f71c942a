"""Reciprocal rank fusion: merge ranked hit lists whose scores are not comparable.

Each hit earns ``1 / (k + rank)`` (rank from 1) in every list it appears in; hits are ranked
by the sum. Used for hybrid (BM25 + k-NN) search by the local store, and by the OpenSearch
adapter where no search pipeline is available.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from solar_rag.domain import SearchHit

DEFAULT_K = 60


def reciprocal_rank_fusion(
    ranked_lists: Sequence[Sequence[SearchHit]], *, k: int = DEFAULT_K, top_k: int
) -> list[SearchHit]:
    """Fused top ``top_k`` hits, deduplicated by chunk id; ``score`` is the fused score.

    Ties are broken by the best rank a hit reached in any list, then by first appearance
    (earlier lists first), so the result is deterministic. The chunk of a hit is taken from
    the first list it appears in.
    """
    first_seen: dict[str, SearchHit] = {}
    for hits in ranked_lists:
        for hit in hits:
            first_seen.setdefault(hit.chunk.chunk_id, hit)
    fused = fuse_ranks([[hit.chunk.chunk_id for hit in hits] for hits in ranked_lists],
                       k=k, top_k=top_k)
    return [SearchHit(first_seen[chunk_id].chunk, score) for chunk_id, score in fused]


def fuse_ranks[K: Hashable](
    ranked_keys: Sequence[Sequence[K]], *, k: int = DEFAULT_K, top_k: int
) -> list[tuple[K, float]]:
    """Reciprocal rank fusion over bare keys (ids), best first: ``[(key, fused score)]``."""
    if k < 0:
        raise ValueError("k must be >= 0")
    if top_k <= 0:
        return []
    scores: dict[K, float] = {}
    best_rank: dict[K, int] = {}
    order: dict[K, int] = {}
    for keys in ranked_keys:
        seen_here: set[K] = set()
        for rank, key in enumerate(keys, start=1):
            if key in seen_here:  # a list should not repeat a key; count it once
                continue
            seen_here.add(key)
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
            best_rank[key] = min(best_rank.get(key, rank), rank)
            order.setdefault(key, len(order))
    ranked = sorted(scores, key=lambda key: (-scores[key], best_rank[key], order[key]))
    return [(key, scores[key]) for key in ranked[:top_k]]
