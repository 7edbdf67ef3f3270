"""Stateless checks of tx body fields shared by every module's msgs: exact field sets, ids, hex, bounded ints."""

from __future__ import annotations

import re
import zlib
from collections.abc import Collection, Mapping
from typing import Any

from fedledger.abci_app.errors import Code, TxError

__all__ = ["HEX64", "HEX128", "ID_RE", "bounded_inflate", "int_field", "int_params", "int_value", "require_fields",
           "str_field"]

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # task and organization ids
HEX64 = re.compile(r"^[0-9a-f]{64}$")  # Ed25519 public keys, sha256 digests
HEX128 = re.compile(r"^[0-9a-f]{128}$")  # Ed25519 signatures


def require_fields(body: Mapping[str, Any], required: Collection[str], optional: Collection[str] = (),
                   what: str = "body") -> None:
    """INVALID_BODY unless `body` has every required field and nothing beyond required and optional."""
    missing = sorted(set(required) - set(body))
    extra = sorted(set(body) - set(required) - set(optional))
    if missing or extra:
        raise TxError(Code.INVALID_BODY, f"{what} fields wrong: missing {missing}, unexpected {extra}")


def str_field(body: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    """The string field `name`, which must match `pattern` (described to the user as `what`)."""
    value = body[name]
    if not isinstance(value, str) or not pattern.match(value):
        raise TxError(Code.INVALID_BODY, f"{name} must be {what}")
    return value


def int_value(value: Any, name: str, lo: int, hi: int) -> int:
    """`value` as an integer in [lo, hi] (bools are not integers here)."""
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise TxError(Code.INVALID_BODY, f"{name} must be an integer in [{lo}, {hi}]")
    return value


def int_field(body: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    """The integer field `name`, in [lo, hi]."""
    return int_value(body[name], name, lo, hi)


def int_params(body: Any, ranges: Mapping[str, tuple[int, int]], what: str, *, partial: bool = True) -> dict[str, int]:
    """Validate a params object of bounded integers named in `ranges`; INVALID_BODY names the bad field.

    partial=True accepts any non-empty subset (a change); partial=False needs every name. `what`
    names the params in messages ("lifecycle", "inference").
    """
    names = sorted(ranges)
    if not isinstance(body, Mapping):
        raise TxError(Code.INVALID_BODY, f"{what} params must be an object with fields from {names}")
    unknown = sorted(set(body) - set(names))
    if unknown:
        raise TxError(Code.INVALID_BODY, f"unknown {what} params {unknown}; known: {names}")
    missing = sorted(set(names) - set(body))
    if not body or (missing and not partial):
        raise TxError(Code.INVALID_BODY, f"{what} params are missing {missing or names}")
    out: dict[str, int] = {}
    for name in sorted(body):
        value = body[name]
        lo, hi = ranges[name]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise TxError(Code.INVALID_BODY, f"{what} param {name} must be an integer in [{lo}, {hi}], got {value!r}")
        out[name] = value
    return out


def bounded_inflate(data: bytes, limit: int, name: str, code: Code = Code.INVALID_BODY) -> bytes:
    """zlib-decompress with a ceiling, so a small tx cannot expand into a huge allocation; TxError(code) if the data
    is not zlib, is truncated, or inflates past `limit` bytes."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise TxError(code, f"{name} is not zlib-compressed data") from None
    if len(out) > limit or inflater.unconsumed_tail or not inflater.eof:
        raise TxError(code, f"{name} is truncated or inflates past {limit} bytes")
    return out
