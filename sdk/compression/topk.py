"""Top-k sparsification with error feedback: send the k largest-magnitude coordinates, carry the rest forward.

``ErrorFeedback`` is one client's state. Each round it adds the new update to the residual it
carried (what earlier rounds did not send), sends the k coordinates of that sum with the largest
magnitude, and keeps everything else as the new residual, so nothing is ever dropped, only
delayed (Stich, Cordonnier, Jaggi 2018; Karimireddy et al. 2019).

*Tie-breaking.* Among coordinates of equal magnitude at the cut, the lowest indices are sent
(``_checks.largest_k``), so the choice is a pure function of the values.

*Exactness.* The residual is float64. For a sent coordinate the residual keeps
``acc − float32(acc)``, which float64 represents exactly (the low bits of a 53-bit value that
float32 dropped), so per round ``sent + new residual == residual + update`` up to the one float64
rounding of that addition (relative error ≤ 2^-53). Over T rounds, Σ sent + final residual equals
Σ updates within Σ_t 2^-53·|acc_t| per coordinate, and exactly when the additions are exact
(e.g. integer-valued updates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.sdk.compression._checks import count, largest_k, size, vector
from fedledger.sdk.compression.errors import CompressionError

__all__ = ["ErrorFeedback", "SparseUpdate", "top_k"]

_F32_MAX = float(np.finfo(np.float32).max)


# eq=False: field-wise == on numpy arrays is ambiguous.
@dataclass(frozen=True, eq=False)
class SparseUpdate:
    """k of d coordinates: strictly increasing uint32 indices below size, and their finite float32 values."""

    size: int
    indices: npt.NDArray[np.uint32]
    values: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        d = size(self.size)
        idx, vals = self.indices, self.values
        if not isinstance(idx, np.ndarray) or idx.dtype != np.uint32 or idx.ndim != 1:
            raise CompressionError("indices must be a 1-D uint32 array")
        if not isinstance(vals, np.ndarray) or vals.dtype != np.float32 or vals.shape != idx.shape:
            raise CompressionError("values must be a float32 array with one value per index")
        count(idx.shape[0], d, "number of entries")
        if idx.shape[0] and int(idx[-1]) >= d:
            raise CompressionError(f"index {int(idx[-1])} is out of range for size {d}")
        if idx.shape[0] > 1 and not (idx[1:] > idx[:-1]).all():
            raise CompressionError("indices must be strictly increasing")
        if not np.isfinite(vals).all():
            raise CompressionError("values contain NaN or infinite values")

    @property
    def k(self) -> int:
        """How many coordinates are sent."""
        return int(self.indices.shape[0])

    def to_dense(self) -> npt.NDArray[np.float32]:
        """The d-vector with the sent values at their indices and zeros elsewhere."""
        out = np.zeros(self.size, dtype=np.float32)
        out[self.indices] = self.values
        return out


def _pick(acc: npt.NDArray[np.float64], k: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
    idx = largest_k(np.abs(acc), k)
    picked = acc[idx]
    if picked.shape[0] and float(np.abs(picked).max()) > _F32_MAX:
        raise CompressionError("an accumulated coordinate exceeds the float32 range")
    return idx, picked.astype(np.float32)


def top_k(x: npt.NDArray[np.float32], k: int) -> SparseUpdate:
    """The k largest-magnitude coordinates of x (no error feedback; lowest index wins ties)."""
    arr = vector(x)
    idx, vals = _pick(arr.astype(np.float64), count(k, arr.shape[0]))
    return SparseUpdate(arr.shape[0], idx, vals)


class ErrorFeedback:
    """One client's top-k compressor with error feedback: holds the float64 residual of what was not sent."""

    def __init__(self, size_: int) -> None:
        self._size = size(size_)
        self._residual = np.zeros(self._size, dtype=np.float64)

    @property
    def size(self) -> int:
        """The vector length d this state compresses."""
        return self._size

    @property
    def residual(self) -> npt.NDArray[np.float64]:
        """A copy of the residual: everything added so far and not yet sent."""
        return self._residual.copy()

    def compress(self, update: npt.NDArray[np.float32], k: int) -> SparseUpdate:
        """Add update to the residual, send its k largest-magnitude coordinates, keep the rest."""
        arr = vector(update)
        if arr.shape[0] != self._size:
            raise CompressionError(f"update has {arr.shape[0]} coordinates, this state compresses {self._size}")
        acc = self._residual + arr
        idx, vals = _pick(acc, count(k, self._size))
        # acc − float32(acc) is exact in float64, so the residual keeps exactly what was not sent.
        acc[idx] -= vals
        self._residual = acc
        return SparseUpdate(self._size, idx, vals)

    def reset(self) -> None:
        """Forget the residual (e.g. when the base model changes under a rollback)."""
        self._residual = np.zeros(self._size, dtype=np.float64)
