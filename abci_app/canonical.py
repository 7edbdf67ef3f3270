"""Canonical JSON: the one deterministic byte encoding used for tx bodies and state values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.errors import ProtocolError

__all__ = ["CanonicalError", "JSONValue", "canonical_bytes", "parse_canonical"]

JSONValue = None | bool | int | str | list["JSONValue"] | dict[str, "JSONValue"]

# Integers are bounded so that every validator (and every client language) agrees on them.
_INT_LIMIT = 2**63


class CanonicalError(ProtocolError):
    """Raised when a value cannot be, or bytes are not, canonically encoded."""

    error_code = "CANONICAL_JSON"


def _check(value: Any, depth: int = 0) -> None:
    # Floats are refused outright: they are platform-dependent and have no place in consensus.
    if depth > 16:
        raise CanonicalError("value nested too deeply")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not -_INT_LIMIT < value < _INT_LIMIT:
            raise CanonicalError("integer out of the signed 64-bit range")
        return
    if isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError("object keys must be strings")
            _check(item, depth + 1)
        return
    raise CanonicalError(f"type {type(value).__name__} is not allowed (no floats, bytes or objects)")


def canonical_bytes(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON: sorted keys, no whitespace, ASCII only, no floats."""
    _check(value)
    return _dumps(value).encode("ascii")


def _no_float(text: str) -> Any:
    raise CanonicalError(f"floating-point number {text!r} is not allowed")


def _no_constant(text: str) -> Any:
    raise CanonicalError(f"constant {text!r} is not allowed")


def _bounded_int(text: str) -> int:
    value = int(text)
    if not -_INT_LIMIT < value < _INT_LIMIT:
        raise CanonicalError("integer out of the signed 64-bit range")
    return value


def parse_canonical(data: bytes) -> Any:
    """Parse bytes that must already be canonical JSON; any other spelling is rejected.

    Requiring the canonical form makes the encoding non-malleable: one value has exactly one
    byte string, so a signature or a hash over the bytes pins the value. The check is the
    re-encoding compared byte for byte; it also rejects duplicate keys (the parsed object keeps
    one, so it re-encodes shorter). The hooks reject floats, NaN/Infinity and oversized integers
    while parsing; everything runs in the C JSON codec, as this sits on every tx's hot path.
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise CanonicalError("not ASCII text") from exc
    try:
        value = json.loads(text, parse_float=_no_float, parse_constant=_no_constant, parse_int=_bounded_int)
    except CanonicalError:
        raise
    except (ValueError, RecursionError) as exc:
        raise CanonicalError(f"not valid JSON: {exc}") from exc
    if _dumps(value) != text:
        raise CanonicalError("JSON is not in canonical form (sorted keys, no whitespace, no duplicate keys)")
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
