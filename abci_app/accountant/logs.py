"""A fast natural logarithm for decimals, deterministic because it uses only correctly rounded operations.

``Context.ln`` is correctly rounded but costs ~100 µs at 60 digits, and a debit needs one ln
per RDP order. This one takes ~10 µs: table lookups (themselves computed once with
``Context.ln``) reduce the argument to 1 + u with |u| < 1/512, and a short atanh series does
the rest. Every step is +, −, ×, ÷ or fma, which the decimal specification defines as correctly
rounded, so the digits are the same on every platform and in both the C and the pure-Python
``decimal``. The result is not always correctly rounded in its last digit (at 62 digits it is
within about 10^-61 relative of the true value), but it is identical everywhere.
"""

from __future__ import annotations

import functools
from decimal import Context, Decimal

from fedledger.abci_app.accountant.decimals import context

__all__ = ["WORK_PRECISION", "ln", "ln1p"]

#: Digits carried inside the logarithm (and the RDP sums): 12 guard digits over the output precision.
WORK_PRECISION = 62
# Enough digits that m·8 and (w−1)·512 below are exact (operands have at most WORK_PRECISION digits).
_EXACT = context(WORK_PRECISION + 10)
_LEVEL1 = 8  # m in [1, 10) is divided by k/8, k = 8..79, leaving [1, 1.125)
_LEVEL2 = 512  # then by 1 + j/512, j = 0..64, leaving [1, 1 + 1/512)
# atanh series terms: |s| ≤ 1/1025, so s² < 9.6e-7 and 11 terms reach 10^-66.
_TERMS = 11


@functools.cache
def _tables() -> tuple[Decimal, tuple[Decimal, ...], tuple[Decimal, ...], tuple[Decimal, ...], tuple[Decimal, ...],
                       tuple[Decimal, ...]]:
    # Built on first use (about 140 correctly rounded lns) so that importing the package stays cheap.
    w = context(WORK_PRECISION)
    ln10 = w.ln(Decimal(10))
    points1 = [w.divide(k, _LEVEL1) for k in range(_LEVEL1, 10 * _LEVEL1)]
    points2 = [w.add(1, w.divide(j, _LEVEL2)) for j in range(_LEVEL2 // _LEVEL1 + 1)]
    # Reductions multiply by rounded reciprocals (faster than dividing); the lns are of the exact points.
    return (ln10, tuple(w.ln(p) for p in points1), tuple(w.divide(1, p) for p in points1),
            tuple(w.ln(p) for p in points2), tuple(w.divide(1, p) for p in points2),
            tuple(w.divide(1, 2 * i + 1) for i in range(_TERMS + 1)))


def _atanh2(w: Context, s: Decimal, inverse_odd: tuple[Decimal, ...]) -> Decimal:
    """2·atanh(s) = ln((1+s)/(1−s)) for |s| ≤ 1/1025, by its odd power series in Horner form."""
    s2 = w.multiply(s, s)
    acc = inverse_odd[_TERMS]
    for i in range(_TERMS - 1, -1, -1):
        acc = w.fma(acc, s2, inverse_odd[i])
    return w.multiply(w.add(s, s), acc)


def ln(w: Context, x: Decimal) -> Decimal:
    """ln(x) for x > 0 with at most ``w.prec`` ≤ WORK_PRECISION digits, computed in the context ``w``."""
    ln10, ln1, inv1, ln2, inv2, inverse_odd = _tables()
    e = x.adjusted()
    m = x.scaleb(-e, w)  # exact: only the exponent changes
    k = int(_EXACT.multiply(m, _LEVEL1)) - _LEVEL1  # floor(8m) − 8, since m ≥ 1
    w1 = w.multiply(m, inv1[k])  # in [1, 1.125], give or take the reciprocal's last digit
    # int() truncates toward zero, so a w1 a hair below 1 still gives j = 0; a hair above 1.125 gives 64.
    j = int(_EXACT.multiply(_EXACT.subtract(w1, 1), _LEVEL2))
    u = w.subtract(w.multiply(w1, inv2[j]), 1)  # |u| < 1/512 + 10^-60
    rest = _atanh2(w, w.divide(u, w.add(2, u)), inverse_odd)
    return w.add(w.add(w.multiply(e, ln10), ln1[k]), w.add(ln2[j], rest))


def ln1p(w: Context, b: Decimal) -> Decimal:
    """ln(1 + b) for b ≥ 0, keeping full relative precision however small b is (1 + 10^-3000 included)."""
    if b.adjusted() < -3:  # b < 0.001: ln(1+b) = 2·atanh(b/(2+b)) directly, no 1 + b formed
        return _atanh2(w, w.divide(b, w.add(2, b)), _tables()[5])
    return ln(w, w.add(1, b))
