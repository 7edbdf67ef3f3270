"""Argument checks and the deterministic k-largest selection shared by the compressors (private)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.compression.errors import CompressionError
from fedledger.sdk.tensors import MAX_TOTAL_ELEMENTS

__all__ = ["MAX_SIZE", "count", "largest_k", "seed_bytes", "size", "vector"]

#: Largest vector any compressor or the wire format handles: the tensor codec's limit (and < 2^32,
#: so every index fits uint32).
MAX_SIZE = MAX_TOTAL_ELEMENTS


def size(value: object, what: str = "size") -> int:
    """A vector length d with 1 ≤ d ≤ MAX_SIZE."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= MAX_SIZE:
        raise CompressionError(f"{what} must be an int in [1, {MAX_SIZE}], got {value!r}")
    return int(value)


def count(value: object, d: int, what: str = "k") -> int:
    """A number of coordinates k with 0 ≤ k ≤ d."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value <= d:
        raise CompressionError(f"{what} must be an int in [0, {d}], got {value!r}")
    return int(value)


def vector(x: Any, what: str = "update") -> npt.NDArray[np.float32]:
    """``x`` if it is a 1-D float32 array of finite values with 1 ≤ len ≤ MAX_SIZE."""
    if not isinstance(x, np.ndarray):
        raise CompressionError(f"{what} must be a numpy array, not {type(x).__name__}")
    if x.dtype != np.float32:
        raise CompressionError(f"{what} must be float32, got {x.dtype} (convert explicitly)")
    if x.ndim != 1:
        raise CompressionError(f"{what} must be 1-D (flatten it first with aggregation.flat), got shape {x.shape}")
    size(x.shape[0], f"length of {what}")
    if not np.isfinite(x).all():
        raise CompressionError(f"{what} contains NaN or infinite values")
    return x


def seed_bytes(seed: object, what: str = "seed") -> bytes:
    """A seed must be bytes (it is hashed, so any length works)."""
    if not isinstance(seed, bytes | bytearray):
        raise CompressionError(f"{what} must be bytes, not {type(seed).__name__}")
    return bytes(seed)


def largest_k(values: npt.NDArray[Any], k: int) -> npt.NDArray[np.uint32]:
    """Sorted uint32 indices of the k largest entries; among equal values at the cut, the lowest indices win.

    np.argpartition finds the k-th largest value t in O(d); the result is then rebuilt from t alone
    (every index with a value > t, plus the lowest-indexed ones equal to t), so it never depends on
    how argpartition orders ties, and is the same on every numpy version. NaN must not occur.
    """
    d = values.shape[0]
    if k == 0:
        return np.zeros(0, dtype=np.uint32)
    if k == d:
        return np.arange(d, dtype=np.uint32)
    candidates = np.argpartition(values, d - k)[d - k:]
    threshold = values[candidates].min()
    above = np.flatnonzero(values > threshold)  # fewer than k, all among the candidates
    ties = np.flatnonzero(values == threshold)[: k - above.shape[0]]
    out = np.concatenate([above, ties]).astype(np.uint32)
    out.sort()
    return out
