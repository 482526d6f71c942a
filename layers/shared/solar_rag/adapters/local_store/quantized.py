"""Int8 copies of the unit vectors, scanned first, with a proven bound on their error.

Each row ``x`` is stored as ``scale * codes`` (int8, ``scale = max|x| / 127``) together with
``residual = |x - scale * codes|``. A query ``q`` (unit length) is quantized the same way to
``q~`` with error ``e = q - q~``. For every row::

    q . x = q~ . (scale * codes) + q~ . (x - scale * codes) + e . x
    |q . x - approx| <= |q~| * residual + |e|          (Cauchy-Schwarz, |x| <= 1)

so ``approx + bound`` is an upper bound of the exact cosine. After the exact float32 scores of
a few best-by-approx rows give a threshold (the k-th best exact score found so far, a lower
bound of the true k-th best), every row whose upper bound reaches the threshold is re-scored
exactly: no row of the true top k can be missed, whatever the data (clustered or uniform).
The scan reads a quarter of the bytes of a float32 scan, which is what bounds its time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_cdist: Callable[..., object] | None
try:  # the SIMD int8 kernels; numpy's integer matmul is far slower but still correct
    from simsimd import cdist as _cdist
except ImportError:  # pragma: no cover - simsimd is in the local dependency group
    _cdist = None

FloatMatrix = npt.NDArray[np.float32]
FloatVector = npt.NDArray[np.float32]
Int8Matrix = npt.NDArray[np.int8]
Scores = npt.NDArray[np.float64]

SLACK = 1e-4
"""Added to every bound: covers float32 rounding in the exact scores and in the bounds."""
_LEVELS = 127.0
THREADED_FROM = 32_768
"""Rows from which one scan is split across cores (below, starting threads costs more)."""
_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class Codes:
    codes: Int8Matrix
    scales: npt.NDArray[np.float32]
    residuals: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, rows: npt.NDArray[np.int64]) -> Codes:
        return Codes(self.codes[rows], self.scales[rows], self.residuals[rows])


def quantize(matrix: FloatMatrix) -> Codes:
    """Per-row symmetric int8 codes of ``matrix`` with each row's residual norm."""
    if len(matrix) == 0:
        return Codes(np.zeros(matrix.shape, np.int8), np.zeros(0, np.float32),
                     np.zeros(0, np.float32))
    peak = np.abs(matrix).max(axis=1)
    scales = np.where(peak > 0, peak / _LEVELS, 1.0).astype(np.float32)
    codes = np.rint(matrix / scales[:, None]).astype(np.int8)
    error = matrix - codes.astype(np.float32) * scales[:, None]
    residuals = np.sqrt(np.einsum("ij,ij->i", error, error)).astype(np.float32)
    return Codes(codes, scales, residuals)


def concatenate(parts: list[Codes], dimensions: int) -> Codes:
    if not parts:
        return quantize(np.zeros((0, dimensions), np.float32))
    return Codes(np.concatenate([p.codes for p in parts]),
                 np.concatenate([p.scales for p in parts]),
                 np.concatenate([p.residuals for p in parts]))


@dataclass(frozen=True, slots=True)
class QueryCodes:
    codes: Int8Matrix  # shape (1, dimensions)
    scale: float
    length: float  # |q~|
    error: float  # |q - q~|


def quantize_query(query: FloatVector) -> QueryCodes:
    peak = float(np.abs(query).max()) if len(query) else 0.0
    scale = peak / _LEVELS if peak > 0 else 1.0
    codes = np.rint(query / scale).astype(np.int8)
    approx = codes.astype(np.float32) * np.float32(scale)
    return QueryCodes(codes[None, :], scale, float(np.linalg.norm(approx)),
                      float(np.linalg.norm(query - approx)))


def approx_scores(codes: Codes, query: QueryCodes) -> Scores:
    """``q~ . (scale * codes)`` of every row (int32-exact dot products, then scaled)."""
    if len(codes) == 0:
        return np.zeros(0, np.float64)
    if _cdist is not None:
        buffer = np.empty((1, len(codes)), np.float64)  # into numpy directly: no conversion
        threads = _THREADS if len(codes) >= THREADED_FROM else 1
        _cdist(query.codes, codes.codes, "dot", out=buffer, threads=threads)
        dots = buffer.reshape(-1)
    else:  # pragma: no cover
        dots = (codes.codes.astype(np.int32) @ query.codes[0].astype(np.int32)).astype(
            np.float64)
    out: Scores = dots * codes.scales * query.scale
    return out


def upper_bounds(approx: Scores, codes: Codes, query: QueryCodes) -> Scores:
    out: Scores = approx + (codes.residuals * query.length + (query.error + SLACK))
    return out
