"""Checking a query answer's Merkle proof against the app hash in the next block header.

State after block H is committed by the app hash carried in header H+1. This module checks the
proof against that header's app hash as served by the node. Checking the header itself against
the validator set's commit signatures (a light client) is not done yet: that belongs to the
governance issue, and until then the verdict says so.
"""

from __future__ import annotations

import time
from typing import Any

from fedledger.abci_app.store import Proof, ProofError, verify_proof
from fedledger.client.errors import ClientError
from fedledger.client.rpc import AbciQueryResult, CometRPC

__all__ = ["ProofFailedError", "check_query_proof"]


class ProofFailedError(ClientError):
    """A query answer does not match the chain's app hash: the node lied or the data was tampered with."""


def _header_app_hash(rpc: CometRPC, height: int, timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        if rpc.height() >= height:
            header = rpc.commit(height)["signed_header"]["header"]
            return bytes.fromhex(header["app_hash"])
        if time.monotonic() > deadline:
            raise ClientError(f"block {height} did not appear within {timeout:.0f}s; cannot check the proof")
        time.sleep(0.1)


def check_query_proof(rpc: CometRPC, res: AbciQueryResult) -> dict[str, Any]:
    """Verify `res` (queried with prove=True) against header H+1's app hash; raise ProofFailedError if not."""
    if not res.proof:
        raise ProofFailedError("the answer carries no proof; this query kind is not provable yet "
                               "(composite answers such as lineage get proofs with the governance issue)")
    app_hash = _header_app_hash(rpc, res.height + 1)
    try:
        verify_proof(app_hash, res.key, res.value, Proof.decode(res.proof))
    except ProofError as exc:
        raise ProofFailedError(f"proof does not verify against the app hash of block {res.height + 1}: {exc}") from exc
    return {"verified": True, "app_hash": app_hash.hex(), "header_height": res.height + 1,
            "header_signatures_checked": False}
