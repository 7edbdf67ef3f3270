"""Integer-only reputation arithmetic: the fixed-point half-life decay every validator computes bit for bit.

Decay rule (the whole specification; integers only, so any implementation reproduces it exactly):

    decayed(score, from_h, to_h) = floor + ((score - floor) * g(r)) >> (PRECISION_BITS + q)
    where q, r = divmod(to_h - from_h, half_life)      (whole half-lives and the remainder)
          g(r) = 2^PRECISION_BITS * 2^(-r / half_life)  computed as below, g(0) = 2^PRECISION_BITS exactly

so after exactly n half-lives the excess over the floor is `excess >> n` (an exact halving, rounded
down), and in between it is scaled by a 128-bit fixed-point power of two. The single final shift
rounds down: a decayed score never exceeds the true real-valued decay and never goes below the floor.
A score at or below the floor is returned unchanged.

g(r) for 0 <= r < half_life, in WORK_BITS = PRECISION_BITS + GUARD_BITS fixed point (every `//` floors):
    LN2 = sum over k = 1 .. WORK_BITS + 8 of (2^(WORK_BITS + 8) // (k * 2^k)), then >> 8
    x   = (r * LN2) // half_life                            (x = r/half_life * ln 2, in [0, ln 2))
    t_0 = 2^WORK_BITS; t_k = (t_{k-1} * x) // (k * 2^WORK_BITS); stop at the first t_k == 0
    E   = t_0 - t_1 + t_2 - t_3 + ...                       (Taylor series of e^-x)
    g   = min(E >> GUARD_BITS, 2^PRECISION_BITS)

The approximation error of g is a few units in 2^-160, far below the gap between consecutive
g(r) (about ln2 / half_life of 2^128), so g is strictly decreasing in r and g(half_life - 1) >
2^127; hence decayed() is monotone non-increasing in (to_h - from_h), across half-life boundaries too.
"""

from __future__ import annotations

from functools import lru_cache

from fedledger.abci_app.errors import ConfigError

__all__ = [
    "GUARD_BITS",
    "MAX_HALF_LIFE",
    "PRECISION_BITS",
    "SCALE",
    "WORK_BITS",
    "DecayError",
    "clamp",
    "decay",
    "decay_factor",
    "ln2_fixed",
]

SCALE = 10**6  # scores are integers in millionths of a reputation unit
PRECISION_BITS = 128
GUARD_BITS = 32
WORK_BITS = PRECISION_BITS + GUARD_BITS
MAX_HALF_LIFE = 10**12  # keeps consecutive g(r) far apart compared with the series' rounding error


class DecayError(ConfigError):
    """A decay was asked with arguments outside its domain (negative span, bad half-life)."""

    error_code = "REPUTATION_DECAY"


def ln2_fixed(bits: int) -> int:
    """ln 2 in `bits`-bit fixed point, from ln 2 = sum_{k>=1} 1 / (k * 2^k), with 8 extra bits then truncated."""
    extra = bits + 8
    one = 1 << extra
    total = 0
    for k in range(1, extra + 1):
        total += one // (k << k)
    return total >> 8


_LN2 = ln2_fixed(WORK_BITS)
_ONE = 1 << PRECISION_BITS


def _exp_neg(x: int) -> int:
    """e^(-x / 2^WORK_BITS) in WORK_BITS fixed point, for 0 <= x < ln 2 (floored alternating Taylor series)."""
    one = 1 << WORK_BITS
    total = one
    term = one
    k = 1
    while True:
        term = (term * x) // (k << WORK_BITS)
        if term == 0:
            return total
        total = total - term if k % 2 == 1 else total + term
        k += 1


@lru_cache(maxsize=8192)
def decay_factor(r: int, half_life: int) -> int:
    """g(r) = 2^(-r / half_life) in PRECISION_BITS fixed point, for 0 <= r < half_life (see module doc)."""
    if not 1 <= half_life <= MAX_HALF_LIFE:
        raise DecayError(f"half-life must be in [1, {MAX_HALF_LIFE}] blocks, got {half_life}")
    if not 0 <= r < half_life:
        raise DecayError(f"remainder {r} must be in [0, {half_life})")
    if r == 0:
        return _ONE
    x = (r * _LN2) // half_life
    return min(_exp_neg(x) >> GUARD_BITS, _ONE)


def decay(score: int, floor: int, from_height: int, to_height: int, half_life: int) -> int:
    """The score decayed from from_height to to_height toward floor (rounded down; see module doc)."""
    if to_height < from_height:
        raise DecayError(f"cannot decay backwards, from height {from_height} to {to_height}")
    if not 1 <= half_life <= MAX_HALF_LIFE:
        raise DecayError(f"half-life must be in [1, {MAX_HALF_LIFE}] blocks, got {half_life}")
    excess = score - floor
    if excess <= 0:
        return score
    q, r = divmod(to_height - from_height, half_life)
    factor = decay_factor(r, half_life)
    if q >= excess.bit_length():
        return floor  # excess >> q is already 0 and factor <= 2^PRECISION_BITS
    return floor + ((excess * factor) >> (PRECISION_BITS + q))


def clamp(value: int, floor: int, cap: int) -> int:
    """value limited to [floor, cap]."""
    return floor if value < floor else cap if value > cap else value
