"""The anchor module's chain records: each recorded anchor, the running meta, and which public tx backs which anchor.

Light on purpose (typing only): the anchoring service and `anchor verify` read these shapes too.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

__all__ = ["AnchorMeta", "AnchorRecord", "AnchorTxRecord", "ReplacedTx"]


class ReplacedTx(TypedDict):
    """A public tx that backed an anchor until a reorg removed its block (see the reanchor tx)."""

    tx_hash: str
    block_number: int
    block_hash: str
    replaced_height: int  # the FedLedger height of the reanchor


class AnchorRecord(TypedDict):
    """`an/anchor/<seq>`: a confirmed anchor of heights from_height..to_height on a public chain."""

    seq: int
    scheme: str
    public_chain_id: int
    contract: str
    tx_hash: str
    block_number: int
    block_hash: str
    root: str
    from_height: int
    to_height: int
    checkpoints: int
    recorded_height: int
    signer: str
    recorder: str  # the recording validator admin's DID
    replaced: NotRequired[list[ReplacedTx]]  # earlier txs of this anchor, oldest first (absent: never re-anchored)


class AnchorMeta(TypedDict):
    """`an/meta`: how many anchors there are and the last anchored height."""

    count: int
    to_height: int


class AnchorTxRecord(TypedDict):
    """`an/tx/<public chain id>/<tx hash>`: the anchor that public tx backs."""

    seq: int
