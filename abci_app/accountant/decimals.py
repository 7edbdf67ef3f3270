"""The accountant's decimal arithmetic: one explicit context, strict input parsing and canonical strings."""

from __future__ import annotations

import re
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    Underflow,
)
from fractions import Fraction

from fedledger.abci_app.errors import ConfigError

__all__ = [
    "PRECISION",
    "AccountantError",
    "canonical_str",
    "ceil_scaled",
    "context",
    "parse_canonical",
    "to_decimal",
]

#: Significant digits of every intermediate result. Part of consensus: changing it changes stored bytes.
PRECISION = 50

# Exponent range of the working context. It is explicit (never the platform's MAX_EMAX, which differs
# between 32- and 64-bit builds) and wide enough for exp(k(k-1)/(2σ²)) at k = 256, σ = 0.1 (about
# 10^1.42e6) and for (1-q)^256 at q = 1 - 1e-12 (10^-3072). Any result outside it traps, so a value
# is never silently turned into Infinity or zero.
_EMAX = 10**8
_EMIN = -(10**8)
_TRAPS = [InvalidOperation, DivisionByZero, Overflow, Underflow]

# A plain decimal, the only spelling a tx body may use: no sign, exponent, leading or trailing zeros.
_CANONICAL = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]*[1-9])?\Z")
# What planning APIs also take from people: "1e-5", "0.010", "2". Signs only so that "-1" gets a range error.
_LENIENT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]{1,3})?\Z")
_MAX_TEXT = 64


class AccountantError(ConfigError):
    """An input the accountant refuses (malformed, out of range, not canonical), with a message saying why."""

    error_code = "ACCOUNTANT"


def context(prec: int = PRECISION) -> Context:
    """A fresh decimal context with the accountant's fixed settings and ``prec`` significant digits.

    Every operation in the accountant goes through such a context's methods, so the thread's
    current context (which any caller may have changed) never influences a result. Each call
    returns a new object, so no caller can change the settings another one computes with.
    """
    return Context(prec=prec, rounding=ROUND_HALF_EVEN, Emin=_EMIN, Emax=_EMAX, capitals=1, clamp=0,
                   flags=[], traps=list(_TRAPS))


def _strip(value: Decimal) -> Decimal:
    """``value`` without trailing zeros in its coefficient, exactly (no context, so never rounded)."""
    sign, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    coeff = list(digits)
    while len(coeff) > 1 and coeff[-1] == 0:
        coeff.pop()
        exp += 1
    if coeff == [0]:
        return Decimal(0)
    return Decimal((sign, tuple(coeff), exp))


def canonical_str(value: Decimal) -> str:
    """The one plain spelling of a finite decimal: no exponent, no trailing zeros ("1.1", "0.00001", "100")."""
    if not value.is_finite():
        raise AccountantError(f"{value} is not a finite number")
    return format(_strip(value), "f")


def _places(value: Decimal) -> int:
    """Decimal places of ``value`` once trailing zeros are dropped (0 for integers)."""
    exp = _strip(value).as_tuple().exponent
    assert isinstance(exp, int)
    return max(0, -exp)


def _show(value: Decimal) -> str:
    """``value`` for an error message: plain when short, else digits and exponent (never megabytes of zeros)."""
    sign, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    if len(digits) <= PRECISION and -60 <= exp <= 30:
        return format(value, "f")
    return f"{'-' if sign else ''}{''.join(map(str, digits[:PRECISION]))}{'…' if len(digits) > PRECISION else ''}e{exp}"


def _checked(value: Decimal, name: str, max_places: int) -> Decimal:
    if not value.is_finite():
        raise AccountantError(f"{name} must be a finite number, not {value!r}")
    stripped = _strip(value)
    if len(stripped.as_tuple().digits) > PRECISION:
        raise AccountantError(f"{name} has more than {PRECISION} significant digits")
    if stripped.adjusted() > 30:
        raise AccountantError(f"{name} {_show(stripped)} is absurdly large")
    if _places(stripped) > max_places:
        raise AccountantError(f"{name} {_show(stripped)} has more than {max_places} decimal places")
    return stripped


def parse_canonical(value: object, name: str, max_places: int) -> Decimal:
    """Parse a tx-body number: a string in canonical plain form (see ``canonical_str``), at most ``max_places``.

    Exactly one spelling is accepted per value, so the same mechanism always has the same bytes;
    anything else (floats, exponents, "+1", "01", "1.10", whitespace) is refused with the reason.
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise AccountantError(f"{name} must be a decimal string such as \"1.1\", not {type(value).__name__}")
    if len(value) > _MAX_TEXT:
        raise AccountantError(f"{name} is longer than {_MAX_TEXT} characters")
    if value.startswith("-"):
        raise AccountantError(f"{name} must be positive, got {value!r}")
    if not _CANONICAL.match(value):
        hint = ""
        if _LENIENT.match(value) and not value.startswith("-"):
            plain = canonical_str(Decimal(value))
            hint = f": write {plain!r}" if len(plain) <= _MAX_TEXT else ""
        raise AccountantError(f"{name} {value!r} is not a canonical plain decimal{hint}")
    return _checked(Decimal(value), name, max_places)


def to_decimal(value: object, name: str, max_places: int) -> Decimal:
    """Accept a number from an API caller: a Decimal, an int, or a decimal string (exponent allowed: "1e-5").

    Floats are refused (their binary value is not the decimal people wrote); so are bools, NaN,
    infinities, more than ``max_places`` decimal places and exponents beyond three digits.
    """
    if isinstance(value, bool) or isinstance(value, float):
        raise AccountantError(f"{name} must be a Decimal, int or decimal string, not {type(value).__name__}")
    if isinstance(value, int):
        return _checked(Decimal(value), name, max_places)
    if isinstance(value, Decimal):
        return _checked(value, name, max_places)
    if isinstance(value, str):
        if len(value) > _MAX_TEXT:
            raise AccountantError(f"{name} is longer than {_MAX_TEXT} characters")
        if not _LENIENT.match(value):
            raise AccountantError(f"{name} {value!r} is not a decimal number such as \"0.01\" or \"1e-5\"")
        return _checked(Decimal(value), name, max_places)
    raise AccountantError(f"{name} must be a Decimal, int or decimal string, not {type(value).__name__}")


def ceil_scaled(value: Decimal | Fraction, places: int) -> int:
    """ceil(value · 10^places) computed exactly with integers (no context, so no rounding anywhere)."""
    if isinstance(value, Decimal) and not value.is_finite():
        raise AccountantError(f"{value} is not a finite number")
    num, den = value.as_integer_ratio()
    if places >= 0:
        num *= 10**places
    else:
        den *= 10**-places
    return -((-num) // den)
