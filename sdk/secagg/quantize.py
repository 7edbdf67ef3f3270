"""Fixed-point quantization of clipped float vectors into Z_(2^b), sized so the sum never wraps.

Encoding. Each coordinate is clipped to [−c, c] (element-wise; L2 clipping is the DP layer's job)
and mapped affinely onto the integers {0, …, L} with L = 2^q − 1 levels:

    v = (x + c) · L / (2c),      q(x) = round(v)   (round half to even, or stochastic rounding)

so −c ↦ 0 and +c ↦ L. Values are offset, never signed: every quantized value is a non-negative
integer ≤ L, and a sum of n of them is a non-negative integer ≤ n·L.

No overflow. The field has b = bit_length(N·L) bits, N being the most clients whose inputs are
ever summed; that is the least b with N·L ≤ 2^b − 1, and never more than q + ⌈log2 N⌉ because

    N·(2^q − 1) ≤ 2^⌈log2 N⌉·(2^q − 1) = 2^(q+⌈log2 N⌉) − 2^⌈log2 N⌉ < 2^(q+⌈log2 N⌉).

Every sum of n ≤ N inputs lies in [0, n·L] ⊆ [0, 2^b − 1], so the sum taken mod 2^b is the true
integer sum: unmasking can never wrap, whatever the inputs (all at +c is the worst case, and one
bit fewer would wrap exactly there). `dequantize_sum` refuses a count above N for this reason.
The sum decodes as Σx ≈ S·2c/L − n·c; the only error is each input's rounding (at most half a
step 2c/L, or one step for stochastic rounding, which is unbiased).

Choosing q. `Quantizer.for_field(clip, N, field_bits)` spends the whole word on resolution:
q = field_bits − ⌈log2 N⌉, the largest q whose sums fit (N·(2^(q+1) − 1) ≥ 2^field_bits),
capped at 48 where float64 still represents every level. A 32-bit field gives q = 25 for
N = 100 and q = 22 for N = 1000, a step of 2c/(2^q − 1).

Stochastic rounding draws its uniforms from the AES-CTR PRG of a 32-byte seed, so it is
reproducible: q(x) = min(⌊v + u⌋, L) with u uniform on [0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.prg import MAX_BITS, UIntArray, dtype_for_bits, uniform01

__all__ = ["MAX_VALUE_BITS", "Quantizer", "ceil_log2"]

MAX_VALUE_BITS = 48


def ceil_log2(n: int) -> int:
    """⌈log2 n⌉ for a positive integer n, exactly (0 for n = 1)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise SecAggError(f"expected a positive integer, got {n!r}")
    return (n - 1).bit_length()


@dataclass(frozen=True)
class Quantizer:
    """Quantization of [−clip, clip] to q = value_bits bits, for sums of at most max_clients inputs."""

    clip: float
    value_bits: int
    max_clients: int

    def __post_init__(self) -> None:
        if not isinstance(self.clip, int | float) or not math.isfinite(self.clip) or self.clip <= 0:
            raise SecAggError(f"clip must be a positive finite number, got {self.clip!r}")
        vb = self.value_bits
        if isinstance(vb, bool) or not isinstance(vb, int) or not 1 <= vb <= MAX_VALUE_BITS:
            raise SecAggError(f"value_bits must be an integer in [1, {MAX_VALUE_BITS}], got {vb!r}")
        ceil_log2(self.max_clients)  # validates
        if self.field_bits > MAX_BITS:
            raise SecAggError(
                f"{vb} value bits for {self.max_clients} clients need a {self.field_bits}-bit field, "
                f"more than {MAX_BITS}; lower value_bits"
            )

    @classmethod
    def for_field(cls, clip: float, max_clients: int, field_bits: int = 32) -> Quantizer:
        """The finest quantizer whose sums of max_clients inputs fit field_bits bits."""
        value_bits = min(field_bits - ceil_log2(max_clients), MAX_VALUE_BITS)
        if value_bits < 1:
            raise SecAggError(f"a {field_bits}-bit field cannot hold sums of {max_clients} inputs")
        return cls(float(clip), value_bits, max_clients)

    @property
    def field_bits(self) -> int:
        """b = bit_length(max_clients · L): the least modulus 2^b that holds every sum without wrapping."""
        return (self.max_clients * self.levels).bit_length()

    @property
    def levels(self) -> int:
        """L = 2^value_bits − 1, the quantized value of +clip."""
        return (1 << self.value_bits) - 1

    @property
    def scale(self) -> float:
        """Quantization steps per unit: L / (2·clip)."""
        return self.levels / (2.0 * self.clip)

    def quantize(self, x: npt.ArrayLike, rounding_seed: bytes | None = None) -> UIntArray:
        """Quantize a 1-D float vector; round to nearest, or stochastically from rounding_seed."""
        arr = np.asarray(x)
        if arr.ndim != 1:
            raise SecAggError(f"quantize expects a 1-D vector, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.integer):
            raise SecAggError(f"quantize expects a numeric vector, got dtype {arr.dtype}")
        v = arr.astype(np.float64)
        if not np.isfinite(v).all():
            raise SecAggError("cannot quantize a vector with NaN or infinite values")
        np.clip(v, -self.clip, self.clip, out=v)
        v += self.clip
        v *= self.scale
        if rounding_seed is None:
            np.rint(v, out=v)
        else:
            v += uniform01(rounding_seed, v.shape[0])
            np.floor(v, out=v)
        # Float rounding can land a hair outside [0, L]; the bound above needs exactly that range.
        np.clip(v, 0.0, float(self.levels), out=v)
        return v.astype(dtype_for_bits(self.field_bits))

    def dequantize_sum(self, total: npt.ArrayLike, count: int) -> npt.NDArray[np.float64]:
        """Decode the sum of count quantized inputs back to the sum of the floats."""
        arr = np.asarray(total)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= self.max_clients:
            raise SecAggError(
                f"count must be an integer in [0, {self.max_clients}] (the quantizer's bound), got {count!r}"
            )
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise SecAggError(f"dequantize expects a 1-D integer vector, got {arr.dtype} of shape {arr.shape}")
        return arr.astype(np.float64) / self.scale - count * self.clip

    def dequantize_mean(self, total: npt.ArrayLike, count: int) -> npt.NDArray[np.float32]:
        """Decode the sum of count ≥ 1 quantized inputs to their float32 mean."""
        if isinstance(count, int) and not isinstance(count, bool) and count < 1:
            raise SecAggError("the mean of zero inputs is undefined")
        return (self.dequantize_sum(total, count) / count).astype(np.float32)
