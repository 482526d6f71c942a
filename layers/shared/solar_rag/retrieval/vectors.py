"""Small vector helpers shared by embedders and stores (pure Python, no numpy)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def norm(vector: Sequence[float]) -> float:
    return math.sqrt(math.fsum(x * x for x in vector))


def l2_normalise(vector: Sequence[float]) -> list[float]:
    """Unit-length copy of ``vector``; a zero vector stays zero (no NaNs)."""
    length = norm(vector)
    if length == 0.0 or not math.isfinite(length):
        return [0.0] * len(vector) if length == 0.0 else _finite_only(vector)
    return [x / length for x in vector]


def dot(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        raise ValueError(f"vector lengths differ: {len(a)} != {len(b)}")
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0.0 when either vector is zero."""
    na, nb = norm(a), norm(b)
    if na == 0.0 or nb == 0.0:
        return 0.0
    return dot(a, b) / (na * nb)


def _finite_only(vector: Sequence[float]) -> list[float]:
    """Fallback for overflowing or non-finite input: rescale before normalising."""
    if not all(math.isfinite(x) for x in vector):
        raise ValueError("vector contains NaN or infinity")
    biggest = max(abs(x) for x in vector)
    return l2_normalise([x / biggest for x in vector])
