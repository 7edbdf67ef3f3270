"""py-evm's key/value database kept inside the FedLedger store, with writes buffered until flushed.

py-evm keeps the EVM world state as Merkle Patricia tries whose nodes (and contract code) are
stored under their keccak hashes. Here every such entry lives in the authenticated FedLedger
store under `evm/node/<hex>`, so the sqlite commit that persists a block persists its EVM state
in the same transaction, and the app hash covers it. Writes go to an in-memory buffer first:
a read-only execution (CheckTx, queries, a denied policy) simply never flushes it.
"""

from __future__ import annotations

from eth.db.backends.base import BaseDB

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.evm_engine.keys import node_key

__all__ = ["StoreBackend"]


class StoreBackend(BaseDB):
    """A py-evm database over a FedLedger Reader; `flush` writes the buffered entries to a Writer."""

    def __init__(self, view: Reader) -> None:
        self._view = view
        self._writes: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        value = self._writes.get(key)
        if value is None:
            value = self._view.get(node_key(key))
            if value is None:
                raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._writes[key] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        # Entries are content-addressed and may be shared by several tries (or by the state at an
        # earlier root), so they are never deleted; py-evm persists with apply_deletes=False anyway.
        self._writes.pop(key, None)

    def _exists(self, key: bytes) -> bool:
        return key in self._writes or self._view.get(node_key(key)) is not None

    @property
    def pending(self) -> int:
        """Number of buffered entries not yet flushed."""
        return len(self._writes)

    def flush(self, state: Writer) -> int:
        """Write the buffered entries that the store does not already hold, in key order; returns how many."""
        written = 0
        for key in sorted(self._writes):
            skey = node_key(key)
            value = self._writes[key]
            # Same key means same content (keccak-addressed), so an existing entry needs no write.
            if state.get(skey) is None:
                state.set(skey, value)
                written += 1
        self._writes.clear()
        return written
