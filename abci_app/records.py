"""Reading and writing state records as canonical JSON, the one value encoding of the store."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.context import Reader, Writer

__all__ = ["JsonObject", "decode_record", "load_record", "store_record"]

#: A JSON object whose shape this layer does not know: what `load_record` decodes before a module's
#: typed loader (e.g. `federation.keeper.find_task`) names it with its TypedDict from `records.py`.
JsonObject = dict[str, Any]


def load_record(view: Reader, key: bytes) -> JsonObject | None:
    """The record at key, or None. A corrupt record is an invariant violation and raises.

    Modules read their records through typed loaders that cast this to the record's TypedDict.
    """
    raw = view.get(key)
    return None if raw is None else decode_record(key, raw)


def decode_record(key: bytes, raw: bytes) -> JsonObject:
    """A stored record's bytes as its JSON object (e.g. from a listing's values); a corrupt one raises."""
    # Records were written canonically by store_record; re-checking canonical form on every read
    # was the largest single cost of a tx, and the Merkle root already pins these bytes.
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise RuntimeError(f"state invariant violated: record at {key!r} is not an object")
    return value


def store_record(state: Writer, key: bytes, record: Mapping[str, object]) -> None:
    """Write a record in canonical form.

    Records are built by handlers from validated messages (ints and strings only), so the
    type walk of canonical_bytes is skipped on this hot path; the encoding itself is the same.
    """
    state.set(key, json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
