"""Reading and writing state records as canonical JSON, the one value encoding of the store."""

from __future__ import annotations

from typing import Any

import json

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import Reader, Writer

__all__ = ["load_record", "store_record"]


def load_record(view: Reader, key: bytes) -> dict[str, Any] | None:
    """The record at key, or None. A corrupt record is an invariant violation and raises."""
    raw = view.get(key)
    if raw is None:
        return None
    # Records were written canonically by store_record; re-checking canonical form on every read
    # was the largest single cost of a tx, and the Merkle root already pins these bytes.
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise RuntimeError(f"state invariant violated: record at {key!r} is not an object")
    return value


def store_record(state: Writer, key: bytes, record: dict[str, Any]) -> None:
    """Write a record in canonical form."""
    state.set(key, canonical_bytes(record))
