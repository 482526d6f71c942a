"""Reciprocal rank fusion: merge ranked lists whose scores are not comparable.

Each item earns ``1 / (k + rank)`` (rank from 1) in every list it appears in; items are
ranked by the sum. The one implementation for hybrid (BM25 + k-NN) search: the local store
fuses row ids, the OpenSearch adapter fuses hits where no search pipeline is available, and
OpenSearch's own pipeline is created with the same ``k`` (:data:`RRF_K`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

RRF_K = 60
"""The rank constant, everywhere (the value of the original RRF paper and OpenSearch's default)."""


@dataclass(frozen=True, slots=True)
class CandidatePolicy:
    """How many results each side of a hybrid search contributes before fusion:
    ``per_result`` per requested result, at least ``minimum`` (a hit ranked well on one side
    and fair on the other must be in both pools to gain), at most ``maximum`` (cost per query),
    and never fewer than the results asked for. Settings ``HYBRID_CANDIDATES_*``."""

    per_result: int = 4
    minimum: int = 20
    maximum: int = 100

    def __post_init__(self) -> None:
        if not (self.per_result >= 1 and 1 <= self.minimum <= self.maximum):
            raise ValueError("candidate policy needs 1 <= per_result and 1 <= minimum <= maximum")

    def count(self, top_k: int) -> int:
        return max(top_k, min(max(top_k * self.per_result, self.minimum), self.maximum))


DEFAULT_CANDIDATES = CandidatePolicy()


def reciprocal_rank_fusion[T](
    ranked_lists: Sequence[Sequence[T]],
    *,
    key: Callable[[T], Hashable],
    top_k: int,
    k: int = RRF_K,
) -> list[tuple[T, float]]:
    """The fused top ``top_k`` as ``(item, fused score)``, best first, one per ``key(item)``.

    The item kept for a key is its first appearance (earlier lists first). Ties are broken by
    the best rank the key reached in any list, then by first appearance, so the result is
    deterministic. A key repeated within one list counts once there.
    """
    if k < 0:
        raise ValueError("k must be >= 0")
    if top_k <= 0:
        return []
    first: dict[Hashable, T] = {}
    scores: dict[Hashable, float] = {}
    best_rank: dict[Hashable, int] = {}
    for items in ranked_lists:
        seen_here: set[Hashable] = set()
        for rank, item in enumerate(items, start=1):
            name = key(item)
            if name in seen_here:
                continue
            seen_here.add(name)
            first.setdefault(name, item)
            scores[name] = scores.get(name, 0.0) + 1.0 / (k + rank)
            best_rank[name] = min(best_rank.get(name, rank), rank)
    order = {name: position for position, name in enumerate(first)}
    ranked = sorted(scores, key=lambda name: (-scores[name], best_rank[name], order[name]))
    return [(first[name], scores[name]) for name in ranked[:top_k]]
