"""Rényi DP of the Poisson-subsampled Gaussian at fixed integer orders, composition, and conversion to (ε, δ).

Everything is decimal arithmetic in contexts built by ``decimals.context`` (50 significant
digits, ROUND_HALF_EVEN, explicit exponent range). Only +, −, ×, ÷, fma, exp and ln are used,
all of which the decimal specification defines as correctly rounded, so the C (libmpdec) and
pure-Python implementations and every platform produce the same digits: a consensus-safe value.

**RDP of one step** at integer order α (Mironov, Talwar, Zhang 2019, §3.3, the integer-α sum):

    A_α = Σ_{k=0..α} C(α,k) (1−q)^{α−k} q^k exp((k²−k)/(2σ²)),      ε_RDP(α) = ln(A_α)/(α−1)

and α/(2σ²) when q = 1. The binomial weights sum to 1, so with d_k = exp((k²−k)/(2σ²)) − 1
(zero for k = 0, 1) the sum is A_α = 1 + B_α, B_α = (1−q)^α Σ_{k=2..α} C(α,k) r^k d_k with
r = q/(1−q). Every term of B_α is positive, so there is no cancellation even when q is tiny and
A_α is 1 + 10^-30; ln(1 + B_α) is then taken at enough extra digits to keep B_α's. The d_k
come from one exp: with R = exp(1/σ²), d_{k+1} = (1 + d_k)·R^k − 1, which we carry as
d_{k+1} = d_k + h_k + d_k·h_k and h_{k+1} = h_k + h_1 + h_k·h_1 with h_k = R^k − 1, again
all positive. The per-step vector is a pure function of (σ, q) and is cached.

**Conversion** (Balle et al. 2020, Theorem 21; the rule of Opacus' ``get_privacy_spent``):

    ε = min_α [ rdp_α − (ln δ + ln α)/(α−1) + ln((α−1)/α) ]

reporting the minimizing order (the smallest one on a tie). A negative minimum (possible only
for δ close to 1) is reported as 0, which is still a valid bound and keeps debits non-negative.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from decimal import ROUND_CEILING, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from functools import reduce
from itertools import accumulate, repeat
from math import comb

from fedledger.abci_app.accountant.decimals import (
    AccountantError,
    canonical_str,
    ceil_scaled,
    context,
    to_decimal,
)
from fedledger.abci_app.accountant.logs import WORK_PRECISION, ln1p
from fedledger.abci_app.accountant.mechanism import Mechanism

__all__ = [
    "MAX_DELTA_PLACES",
    "ORDERS",
    "RDP_PLACES",
    "ZERO_RDP",
    "compose",
    "decode_rdp",
    "encode_rdp",
    "epsilon",
    "parse_delta",
    "quantize_epsilon",
    "quantize_rdp",
    "rdp",
]

#: The RDP orders, fixed because they are part of consensus (stored vectors have one entry per
#: order, in this order). Opacus' default list restricted to integers is 2..10 and 12..63; we take
#: every integer 2..64 (11 included) plus 128 and 256, which matter for large T or small q.
ORDERS: tuple[int, ...] = (*range(2, 65), 128, 256)

#: Stored RDP values are rounded UP to this many decimal places (1e-12).
RDP_PLACES = 12
#: δ may have at most this many decimal places, so its smallest value is 1e-30.
MAX_DELTA_PLACES = 30
# Micro-ε must fit the canonical JSON integer range (signed 64-bit).
_MAX_MICRO = 2**63 - 1
_STORED = re.compile(r"(0|[1-9][0-9]{0,37})\.[0-9]{12}\Z")
_MAX_ORDER = ORDERS[-1]


@functools.cache
def _binomials() -> dict[int, tuple[Decimal, ...]]:
    """C(α, k) for k = 2..α, rounded once to the working precision (C(256,128) has 76 digits)."""
    w = context(WORK_PRECISION)
    return {a: tuple(w.create_decimal(comb(a, k)) for k in range(2, a + 1)) for a in ORDERS}


def _expm1(w: Context, x: Decimal) -> Decimal:
    """exp(x) − 1 for x > 0 at ``w``'s precision, also when x is tiny."""
    if x.adjusted() >= 0:
        return w.subtract(w.exp(x), 1)
    # exp(x) = 1.000…; widening by the leading zeros of x keeps w.prec digits after subtracting 1.
    wide = context(w.prec + 1 - x.adjusted())
    return w.plus(wide.subtract(wide.exp(x), 1))


@functools.lru_cache(maxsize=4096)
def _per_step(sigma: Decimal, q: Decimal) -> tuple[Decimal, ...]:
    """RDP of one step at every order in ORDERS (cached: a pure function of σ and q).

    Intermediate values carry WORK_PRECISION digits (12 guard digits); each result is rounded
    once to PRECISION. The loops are map/accumulate over context methods, so they run in C.
    """
    ctx = context()
    w = context(WORK_PRECISION)
    inv_var = w.divide(1, w.multiply(sigma, sigma))  # 1/σ²
    if q == 1:
        half = ctx.divide(inv_var, 2)
        return tuple(ctx.multiply(a, half) for a in ORDERS)
    n = _MAX_ORDER - 1  # k = 2.._MAX_ORDER
    one_minus_q = w.subtract(1, q)  # exact: q has at most 12 places
    r = w.divide(q, one_minus_q)
    # R^j = 1 + h_j with h_j = expm1(j/σ²) > 0, and 1 + d_k = Π_{j<k} (1 + h_j); carrying h and d
    # (never 1 + h, 1 + d) keeps their full relative precision when σ is large and they are tiny.
    h1 = _expm1(w, inv_var)
    h = list(accumulate(repeat(h1, n - 1), lambda hj, _: w.fma(hj, h1, w.add(hj, h1)), initial=h1))
    d = list(accumulate(h[1:], lambda dk, hk: w.fma(dk, hk, w.add(dk, hk)), initial=h1))  # d_2.._MAX_ORDER
    r_powers = list(accumulate(repeat(r, _MAX_ORDER - 1), w.multiply, initial=r))  # r^1..r^max
    t = list(map(w.multiply, r_powers[1:], d))  # t_k = r^k d_k, k = 2..max
    q_powers = list(accumulate(repeat(one_minus_q, _MAX_ORDER - 1), w.multiply, initial=one_minus_q))
    binom = _binomials()
    out = []
    for a in ORDERS:
        # B_α = (1−q)^α Σ_{k=2..α} C(α,k) t_k, summed in increasing k: every term is positive.
        total = reduce(w.add, map(w.multiply, binom[a], t))
        b = w.multiply(q_powers[a - 1], total)
        out.append(ctx.divide(ln1p(w, b), a - 1))
    return tuple(out)


def rdp(mech: Mechanism) -> tuple[Decimal, ...]:
    """RDP of ``mech`` (all of its T steps) at each order in ORDERS."""
    if not isinstance(mech, Mechanism):
        raise AccountantError(f"rdp needs a Mechanism, not {type(mech).__name__}")
    return _rdp(mech)


@functools.lru_cache(maxsize=1024)
def _rdp(mech: Mechanism) -> tuple[Decimal, ...]:
    # A pure function of the (frozen, hashable) mechanism: caching it cannot change any result.
    ctx = context()
    return tuple(ctx.multiply(v, mech.steps) for v in _per_step(mech.noise_multiplier, mech.sample_rate))


def _vector(vec: Sequence[Decimal], name: str) -> tuple[Decimal, ...]:
    if isinstance(vec, str | bytes) or len(vec) != len(ORDERS):
        raise AccountantError(f"{name} must hold one value per order ({len(ORDERS)})")
    for v in vec:
        if not isinstance(v, Decimal) or not v.is_finite() or v < 0:
            raise AccountantError(f"{name} must hold finite non-negative Decimals, found {v!r}")
    return tuple(vec)


def compose(*rdps: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """RDP of running all the given mechanisms: the per-order sum (the zero vector for no arguments)."""
    return _compose(*(_vector(vec, f"rdp vector {n}") for n, vec in enumerate(rdps)))


def _compose(*rdps: Sequence[Decimal]) -> tuple[Decimal, ...]:
    ctx = context()
    total = [Decimal(0)] * len(ORDERS)
    for vec in rdps:
        for i, v in enumerate(vec):
            total[i] = ctx.add(total[i], v)
    return tuple(total)


def parse_delta(delta: Decimal | int | str) -> Decimal:
    """Validate δ: 0 < δ < 1 with at most 30 decimal places; "1e-5", "0.00001" or a Decimal."""
    d = to_decimal(delta, "delta", MAX_DELTA_PLACES)
    if not 0 < d < 1:
        raise AccountantError(f"delta must be in (0, 1), got {canonical_str(d)}")
    return d


@functools.lru_cache(maxsize=256)
def _offsets(delta: Decimal) -> tuple[Decimal, ...]:
    """Per order: ln((α−1)/α) − (ln δ + ln α)/(α−1), the part of the conversion that only depends on δ."""
    ctx = context()
    ln_delta = ctx.ln(delta)  # the correctly rounded ln: once per δ, so speed does not matter
    return tuple(
        ctx.subtract(ctx.ln(ctx.divide(a - 1, a)), ctx.divide(ctx.add(ln_delta, ctx.ln(Decimal(a))), a - 1))
        for a in ORDERS
    )


def epsilon(rdp_vec: Sequence[Decimal], delta: Decimal | str) -> tuple[Decimal, int]:
    """(ε, best order) of an RDP vector at δ, by the Balle et al. 2020 conversion Opacus uses."""
    return _epsilon(_vector(rdp_vec, "rdp_vec"), delta)


def _epsilon(vec: Sequence[Decimal], delta: Decimal | str) -> tuple[Decimal, int]:
    ctx = context()
    best: Decimal | None = None
    order = ORDERS[0]
    for a, v, off in zip(ORDERS, vec, _offsets(parse_delta(delta)), strict=True):
        eps = ctx.add(v, off)
        if best is None or eps < best:
            best, order = eps, a
    assert best is not None
    return (best if best > 0 else Decimal(0)), order


def quantize_epsilon(eps: Decimal) -> int:
    """ε as an integer number of micro-ε, rounded UP so the chain never under-charges."""
    if not isinstance(eps, Decimal) or not eps.is_finite() or eps < 0:
        raise AccountantError(f"epsilon must be a finite non-negative Decimal, got {eps!r}")
    micro = ceil_scaled(eps, 6)
    if micro > _MAX_MICRO:
        raise AccountantError(f"epsilon of {micro} micro-ε is too large to store")
    return micro


def quantize_rdp(rdp_vec: Sequence[Decimal]) -> tuple[Decimal, ...]:
    """Each value rounded UP to 12 decimal places (a larger RDP value is still a valid bound).

    ε is non-decreasing in every entry, so ε of the rounded vector is at least ε of the exact
    one: storing rounded-up vectors keeps every later debit conservative.
    """
    return _quantize(_vector(rdp_vec, "rdp_vec"))


def _quantize(vec: Sequence[Decimal]) -> tuple[Decimal, ...]:
    # Decimal's quantize is exact and correctly rounded (here: up) to exponent −12, so it equals
    # ceil(v · 10^12) / 10^12; the wide, trapping context makes an out-of-range value an error,
    # never a silent rounding.
    return tuple(v.quantize(_RDP_QUANTUM, rounding=ROUND_CEILING, context=_QUANTIZE_CTX) for v in vec)


def encode_rdp(rdp_vec: Sequence[Decimal]) -> list[str]:
    """The canonical state form of an RDP vector: per order, a string with exactly 12 places, rounded UP."""
    return [format(v, "f") for v in quantize_rdp(rdp_vec)]


_RDP_QUANTUM = Decimal(1).scaleb(-RDP_PLACES)
_QUANTIZE_CTX = Context(prec=120, Emax=10**6, Emin=-(10**6), traps=[InvalidOperation, Overflow, DivisionByZero])


def decode_rdp(obj: object) -> tuple[Decimal, ...]:
    """Parse a stored RDP vector (as written by ``encode_rdp``), refusing any other spelling."""
    if not isinstance(obj, list) or len(obj) != len(ORDERS):
        raise AccountantError(f"a stored rdp vector must be a list of {len(ORDERS)} strings")
    out = []
    for v in obj:
        if not isinstance(v, str) or not _STORED.match(v):
            raise AccountantError(f"stored rdp value {v!r} is not a decimal with exactly {RDP_PLACES} places")
        out.append(Decimal(v))
    return tuple(out)


#: The RDP vector of a participant with no history.
ZERO_RDP: tuple[Decimal, ...] = decode_rdp(["0." + "0" * RDP_PLACES] * len(ORDERS))
