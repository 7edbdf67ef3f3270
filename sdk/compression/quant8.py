"""8-bit stochastic quantization: per-chunk min/max scaling and unbiased stochastic rounding.

The vector is cut into chunks of ``chunk_size`` coordinates (the last one may be shorter; the
default is one chunk for the whole vector). For a chunk with minimum lo and maximum hi:

    s = (hi − lo) / 255, rounded UP to float32;   v = (x − lo) / s ∈ [0, 255];
    code = floor(v) + [u < v − floor(v)],  u uniform on the 53-bit grid of [0, 1);
    decoded = lo + code · s  (float64, rounded once to float32).

E[code] = v, so the decoded value is unbiased: E[decoded] = x up to float rounding (the 2^-53
grid of u and the final float32 rounding, at most half an ulp of x). Every decoded value lies
within one step s of x: |decoded − x| < s (plus that half ulp). A constant chunk (hi = lo) has
s = 0 and decodes exactly. Rounding s up keeps v ≤ 255 so no code is ever clipped, which would
bias it; v is still clamped at 255 against a last-place rounding of the division.

The uniforms come from the AES-256-CTR stream of ``fedledger.sdk.prg`` keyed by ``seed``
(domain ``fedledger/compression/quant8``), so the same vector and seed give the same codes
everywhere. ``seed=None`` takes a fresh OS seed. The rounding noise is not a privacy mechanism
and need not be secret, but it should differ between clients and rounds, or errors correlate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.sdk.compression._checks import seed_bytes, size, vector
from fedledger.sdk.compression.errors import CompressionError
from fedledger.sdk.prg import Stream, fresh_seed

__all__ = ["LEVELS", "Quantized8", "chunk_count", "dequantize8", "quantize8"]

#: Codes are 0..LEVELS; a chunk spans LEVELS steps.
LEVELS = 255
_DOMAIN = "fedledger/compression/quant8"


def chunk_count(d: int, chunk_size: int) -> int:
    """How many chunks a vector of d coordinates has at this chunk size: ceil(d / chunk_size)."""
    return -(-d // chunk_size)


# eq=False: field-wise == on numpy arrays is ambiguous.
@dataclass(frozen=True, eq=False)
class Quantized8:
    """A quantized vector: per chunk a float32 low end and step, and one uint8 code per coordinate."""

    size: int
    chunk_size: int
    lows: npt.NDArray[np.float32]
    scales: npt.NDArray[np.float32]
    codes: npt.NDArray[np.uint8]

    def __post_init__(self) -> None:
        d = size(self.size)
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int) \
                or not 1 <= self.chunk_size <= d:
            raise CompressionError(f"chunk_size must be an int in [1, size={d}], got {self.chunk_size!r}")
        n = chunk_count(d, self.chunk_size)
        for name, arr, dtype, length in (("lows", self.lows, np.float32, n), ("scales", self.scales, np.float32, n),
                                         ("codes", self.codes, np.uint8, d)):
            if not isinstance(arr, np.ndarray) or arr.dtype != dtype or arr.shape != (length,):
                raise CompressionError(f"{name} must be a 1-D {np.dtype(dtype)} array of length {length}")
        if not (np.isfinite(self.lows).all() and np.isfinite(self.scales).all()):
            raise CompressionError("lows and scales must be finite")
        if (self.scales < 0).any():
            raise CompressionError("scales must be non-negative")

    def decode(self) -> npt.NDArray[np.float32]:
        """The dequantized float32 vector (same as ``dequantize8``)."""
        return dequantize8(self)


def _per_coordinate(values: npt.NDArray[np.float64], d: int, chunk_size: int) -> npt.NDArray[np.float64]:
    """Each chunk's value repeated over its coordinates."""
    return np.repeat(values, chunk_size)[:d]


def quantize8(x: npt.NDArray[np.float32], seed: bytes | None = None, chunk_size: int | None = None) -> Quantized8:
    """Quantize a 1-D float32 vector to 8 bits per coordinate with stochastic rounding (see the module docstring).

    chunk_size None (or ≥ len(x)) scales the whole vector by one min/max; smaller chunks adapt to
    local ranges at 8 more bytes per chunk. Same x, seed and chunk_size give the same result.
    """
    arr = vector(x)
    d = arr.shape[0]
    chunk = d if chunk_size is None else size(chunk_size, "chunk_size")
    chunk = min(chunk, d)  # one canonical form for "a single chunk"
    starts = np.arange(0, d, chunk)
    lows = np.minimum.reduceat(arr, starts)
    highs = np.maximum.reduceat(arr, starts)
    step = (highs.astype(np.float64) - lows.astype(np.float64)) / LEVELS
    scales = step.astype(np.float32)
    short = scales.astype(np.float64) < step
    scales[short] = np.nextafter(scales[short], np.float32(np.inf))  # round UP so v never exceeds 255
    if not np.isfinite(scales).all():
        raise CompressionError("the value range of a chunk exceeds what float32 steps can express")
    s = _per_coordinate(scales.astype(np.float64), d, chunk)
    lo = _per_coordinate(lows.astype(np.float64), d, chunk)
    safe = np.where(s > 0, s, 1.0)
    v = np.minimum((arr.astype(np.float64) - lo) / safe, float(LEVELS))
    v[s == 0] = 0.0
    whole = np.floor(v)
    u = Stream(fresh_seed() if seed is None else seed_bytes(seed), _DOMAIN).uniform(d)
    codes = (whole + (u < v - whole)).astype(np.uint8)
    return Quantized8(d, chunk, lows, scales, codes)


def dequantize8(q: Quantized8) -> npt.NDArray[np.float32]:
    """lo + code · s per coordinate, computed in float64 and rounded once to float32."""
    if not isinstance(q, Quantized8):
        raise CompressionError(f"expected a Quantized8, not {type(q).__name__}")
    lo = _per_coordinate(q.lows.astype(np.float64), q.size, q.chunk_size)
    s = _per_coordinate(q.scales.astype(np.float64), q.size, q.chunk_size)
    return (lo + q.codes.astype(np.float64) * s).astype(np.float32)
