"""Stateless checks of tx body fields shared by every module's msgs: exact field sets, ids, hex, bounded ints."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from fedledger.abci_app.errors import Code, TxError

__all__ = ["HEX64", "HEX128", "ID_RE", "int_field", "int_value", "require_fields", "str_field"]

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
