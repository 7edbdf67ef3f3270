"""The record_anchor and reanchor tx bodies and their stateless validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.fields import int_field, require_fields, str_field

__all__ = ["PARSERS", "SCHEMES", "RecordAnchor", "Reanchor"]

SCHEMES = frozenset({"fedledger-checkpoint-v1"})  # checkpoint leaf encodings this chain knows (node/anchor)
_HASH = re.compile(r"^0x[0-9a-f]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
_FIELDS = ("scheme", "public_chain_id", "contract", "tx_hash", "block_number", "block_hash", "root",
           "from_height", "to_height")
MAX_HEIGHT = 2**62


@dataclass(frozen=True)
class RecordAnchor:
    """A confirmed anchor tx on a public chain, committing the checkpoints of heights from_height..to_height."""

    scheme: str
    public_chain_id: int  # EIP-155 chain id of the public chain
    contract: str  # lower-case 0x address of the CheckpointAnchor contract
    tx_hash: str  # lower-case 0x hash of the mined anchor tx
    block_number: int
    block_hash: str
    root: str  # lower-case 0x Merkle root of the batch
    from_height: int
    to_height: int

    @staticmethod
    def parse(body: dict[str, Any]) -> RecordAnchor:
        """Validate a record_anchor body (hex is lower-case and 0x-prefixed, so one anchor has one encoding)."""
        require_fields(body, _FIELDS)
        scheme = body["scheme"]
        # isinstance first: a list or object here is unhashable, and the membership test would raise
        # TypeError instead of rejecting the tx (found by `fedledger bench fuzz`).
        if not isinstance(scheme, str) or scheme not in SCHEMES:
            raise TxError(Code.INVALID_BODY, f"scheme must be one of {sorted(SCHEMES)}")
        msg = RecordAnchor(
            scheme=scheme,
            public_chain_id=int_field(body, "public_chain_id", 1, 2**62),
            contract=str_field(body, "contract", _ADDRESS, "a lower-case 0x-prefixed 20-byte address"),
            tx_hash=str_field(body, "tx_hash", _HASH, "a lower-case 0x-prefixed 32-byte hash"),
            block_number=int_field(body, "block_number", 0, MAX_HEIGHT),
            block_hash=str_field(body, "block_hash", _HASH, "a lower-case 0x-prefixed 32-byte hash"),
            root=str_field(body, "root", _HASH, "a lower-case 0x-prefixed 32-byte hash"),
            from_height=int_field(body, "from_height", 1, MAX_HEIGHT),
            to_height=int_field(body, "to_height", 1, MAX_HEIGHT),
        )
        if msg.to_height < msg.from_height:
            raise TxError(Code.INVALID_BODY, f"to_height {msg.to_height} is below from_height {msg.from_height}")
        return msg


@dataclass(frozen=True)
class Reanchor:
    """A new public-chain tx (or the same tx in a new block) for anchor `seq`, whose block a reorg removed."""

    seq: int
    anchor: RecordAnchor  # the same batch (range, root, chain, contract), now backed by this tx and block

    @staticmethod
    def parse(body: dict[str, Any]) -> Reanchor:
        """Validate a reanchor body: record_anchor's fields plus `seq`, the anchor it replaces."""
        require_fields(body, (*_FIELDS, "seq"))
        seq = int_field(body, "seq", 1, MAX_HEIGHT)
        return Reanchor(seq=seq, anchor=RecordAnchor.parse({k: v for k, v in body.items() if k != "seq"}))


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {"record_anchor": RecordAnchor.parse,
                                                          "reanchor": Reanchor.parse}
