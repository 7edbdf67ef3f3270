"""A round's shared random coordinate subset: every client sends the SAME k of d coordinates.

With per-client top-k the coordinates differ between clients, so pairwise secure-aggregation
masks over a sparse vector would not cancel. Instead all clients of a round derive one subset
from the round's 32-byte seed (e.g. the opening block's hash), send only the values there
(``gather``; no indices travel), mask that dense k-vector, and the aggregator ``scatter``s the
unmasked sum back to d coordinates.

Derivation (a uniformly random k-subset, reproducible from the documented bytes alone): draw
d 64-bit words from AES-256-CTR keyed by SHA-256 over the PRG tag, the domain
``fedledger/compression/shared-coordinates`` and the seed (``fedledger.sdk.prg``), word i
belonging to coordinate i; take the k coordinates with the largest words (lowest index first on
an equal word, which happens with probability about d²/2^65), sorted ascending. Ranking i.i.d.
uniform keys makes every k-subset equally likely. Cost: O(d) (8·d keystream bytes and one
argpartition), the same for every client.

The subset is public to anyone who knows the seed, which is fine: it carries no private data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.sdk.compression._checks import count, largest_k, seed_bytes, size, vector
from fedledger.sdk.compression.errors import CompressionError
from fedledger.sdk.prg import Stream

__all__ = ["ROUND_SEED_BYTES", "SharedSparseUpdate", "gather", "scatter", "shared_coordinates"]

#: A round seed is exactly this long (a SHA-256 block hash).
ROUND_SEED_BYTES = 32
_DOMAIN = "fedledger/compression/shared-coordinates"


def shared_coordinates(seed: bytes, d: int, k: int) -> npt.NDArray[np.uint32]:
    """The round's k coordinates out of d: sorted, distinct uint32, a pure function of (seed, d, k)."""
    raw = seed_bytes(seed, "round seed")
    if len(raw) != ROUND_SEED_BYTES:
        raise CompressionError(f"round seed must be {ROUND_SEED_BYTES} bytes, got {len(raw)}")
    n = size(d, "d")
    keys = Stream(raw, _DOMAIN).uint64(n)
    return largest_k(keys, count(k, n))


def _coords(coords: object, d: int | None = None) -> npt.NDArray[np.uint32]:
    if not isinstance(coords, np.ndarray) or coords.dtype != np.uint32 or coords.ndim != 1:
        raise CompressionError("coordinates must be a 1-D uint32 array (from shared_coordinates)")
    if coords.shape[0] > 1 and not (coords[1:] > coords[:-1]).all():
        raise CompressionError("coordinates must be strictly increasing")
    if d is not None and coords.shape[0] and int(coords[-1]) >= d:
        raise CompressionError(f"coordinate {int(coords[-1])} is out of range for size {d}")
    return coords


def gather(x: npt.NDArray[np.float32], coords: npt.NDArray[np.uint32]) -> npt.NDArray[np.float32]:
    """The values of x at the shared coordinates (what a client masks and sends)."""
    arr = vector(x)
    return arr[_coords(coords, arr.shape[0])].copy()


def scatter(values: npt.NDArray[np.float32], coords: npt.NDArray[np.uint32], d: int) -> npt.NDArray[np.float32]:
    """A d-vector with values at the shared coordinates and zeros elsewhere."""
    n = size(d, "d")
    idx = _coords(coords, n)
    if not isinstance(values, np.ndarray) or values.dtype != np.float32 or values.shape != idx.shape:
        raise CompressionError(f"values must be a float32 array of length {idx.shape[0]} (one per coordinate)")
    out = np.zeros(n, dtype=np.float32)
    out[idx] = values
    return out


# eq=False: field-wise == on numpy arrays is ambiguous.
@dataclass(frozen=True, eq=False)
class SharedSparseUpdate:
    """The values a client sends at the round's shared coordinates (the coordinates themselves are not sent)."""

    size: int
    values: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        d = size(self.size)
        if not isinstance(self.values, np.ndarray) or self.values.dtype != np.float32 or self.values.ndim != 1:
            raise CompressionError("values must be a 1-D float32 array")
        count(self.values.shape[0], d, "number of values")
        if not np.isfinite(self.values).all():
            raise CompressionError("values contain NaN or infinite values")

    @property
    def k(self) -> int:
        """How many coordinates are sent."""
        return int(self.values.shape[0])

    def to_dense(self, coords: npt.NDArray[np.uint32]) -> npt.NDArray[np.float32]:
        """The d-vector, given the round's coordinates (``shared_coordinates(seed, size, k)``)."""
        return scatter(self.values, coords, self.size)
