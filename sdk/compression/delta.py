"""Model deltas against the last promoted version: ``delta = new − base`` and ``restore = base + delta``.

Both are float32 operations, so ``restore(base, delta(new, base))`` equals new only up to two
float32 roundings: at most 2^-24·(|new − base| + |restore|) per coordinate, i.e. within about one
ulp of max(|new|, |base|); it is exact when new and base are within a factor 2 of each other
(Sterbenz) or when the values are small integers. Shapes (and, for named tensors, names) must
match exactly: a delta against the wrong base is refused, not broadcast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.compression.errors import CompressionError

__all__ = ["delta", "restore", "tensor_delta", "tensor_restore"]


def _pair(a: Any, b: Any, what_a: str, what_b: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    for arr, what in ((a, what_a), (b, what_b)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32:
            raise CompressionError(f"{what} must be a float32 numpy array")
        if not np.isfinite(arr).all():
            raise CompressionError(f"{what} contains NaN or infinite values")
    if a.shape != b.shape:
        raise CompressionError(f"shape mismatch: {what_a} has shape {a.shape}, {what_b} has {b.shape}")
    return a, b


def _finite(out: npt.NDArray[np.float32], what: str) -> npt.NDArray[np.float32]:
    if not np.isfinite(out).all():
        raise CompressionError(f"{what} overflowed float32")
    return out


def delta(new: npt.NDArray[np.float32], base: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """new − base in float32; the shapes must be equal."""
    a, b = _pair(new, base, "new", "base")
    return _finite(a - b, "delta")


def restore(base: npt.NDArray[np.float32], delta_: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """base + delta in float32; the shapes must be equal."""
    a, b = _pair(base, delta_, "base", "delta")
    return _finite(a + b, "restored model")


def _names(a: Mapping[str, Any], b: Mapping[str, Any], what_a: str, what_b: str) -> list[str]:
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        raise CompressionError(f"{what_a} and {what_b} must be mappings of name -> float32 array")
    if set(a) != set(b):
        only_a = sorted(set(a) - set(b))
        only_b = sorted(set(b) - set(a))
        raise CompressionError(f"tensor names differ: only in {what_a} {only_a}, only in {what_b} {only_b}")
    return sorted(a)


def tensor_delta(new: Mapping[str, npt.NDArray[np.float32]], base: Mapping[str, npt.NDArray[np.float32]]
                 ) -> dict[str, npt.NDArray[np.float32]]:
    """Per named tensor new − base; names and shapes must match exactly."""
    return {n: _finite(np.subtract(*_pair(new[n], base[n], f"new[{n!r}]", f"base[{n!r}]")), f"delta[{n!r}]")
            for n in _names(new, base, "new", "base")}


def tensor_restore(base: Mapping[str, npt.NDArray[np.float32]], delta_: Mapping[str, npt.NDArray[np.float32]]
                   ) -> dict[str, npt.NDArray[np.float32]]:
    """Per named tensor base + delta; names and shapes must match exactly."""
    return {n: _finite(np.add(*_pair(base[n], delta_[n], f"base[{n!r}]", f"delta[{n!r}]")), f"restored[{n!r}]")
            for n in _names(base, delta_, "base", "delta")}
