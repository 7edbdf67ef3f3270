"""Checking a query answer against the chain: the signed header H+1 and the Merkle proof under its app hash.

State after block H is committed by the app hash carried in header H+1. With a `TrustRoot` (the
validator set of a genesis file held locally), `check_query_proof` fetches /commit for H+1,
verifies that header against the trusted validators' commit signatures (light-client check, see
`lightclient.py`) and then the answer's Merkle proof against that header's app hash: a node that
lies about the value, the proof or the header is caught. Without a trust root, only the Merkle
proof against the app hash *as served by the node* is checked, and the verdict says so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Protocol

from fedledger.abci_app.store import Proof, ProofError, verify_proof
from fedledger.client.errors import ClientError
from fedledger.client.lightclient import (
    HeaderVerificationError,
    SignedHeader,
    TrustRoot,
    verify_signed_header,
)
from fedledger.client.rpc import AbciQueryResult

__all__ = ["CommitSource", "ProofFailedError", "check_query_proof", "localnet_trust_root"]


class ProofFailedError(ClientError):
    """A query answer does not match the chain: the node lied or the data was tampered with in transit."""


class CommitSource(Protocol):
    """What the check needs from a node: its latest height and /commit (CometRPC provides both)."""

    def height(self) -> int:
        """Latest block height the node knows."""
        ...

    def commit(self, height: int) -> dict[str, Any]:
        """/commit: the signed header at height."""
        ...


def localnet_trust_root(home: str | Path, node: int = 0) -> TrustRoot:
    """The trust root of a localnet created on this machine: its node's genesis.json on local disk."""
    from fedledger.localnet.config import load_spec

    spec = load_spec(Path(home).expanduser())
    if not 0 <= node < len(spec.nodes):
        raise ClientError(f"the localnet in {home} has no node {node}")
    return TrustRoot.from_genesis_file(spec.nodes[node].cometbft_home / "config" / "genesis.json")


def _signed_header(rpc: CommitSource, height: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        if rpc.height() >= height:
            return rpc.commit(height)
        if time.monotonic() > deadline:
            raise ClientError(f"block {height} did not appear within {timeout:.0f}s; cannot check the proof")
        time.sleep(0.1)


def check_query_proof(rpc: CommitSource, res: AbciQueryResult, trust: TrustRoot | None,
                      timeout: float = 10.0) -> dict[str, Any]:
    """Verify `res` (queried with prove=True) against header H+1; raise ProofFailedError if anything fails.

    With `trust`, header H+1 must hash to the block its commit signs, name the trusted validator
    set, and carry valid signatures of more than 2/3 of the trusted voting power; the proof is then
    checked against that verified header's app hash. Passing `trust=None` explicitly asks for the
    weaker check against the app hash as the node serves it (`header_signatures_checked: False`).
    """
    if not res.proof:
        raise ProofFailedError("the answer carries no proof; this query kind is not provable yet "
                               "(composite answers such as lineage get proofs with the governance issue)")
    header_height = res.height + 1
    answer = _signed_header(rpc, header_height, timeout)
    try:
        signed = SignedHeader.from_rpc(answer)
    except HeaderVerificationError as exc:
        raise ProofFailedError(f"the node's /commit answer for block {header_height} is unusable: {exc}") from exc

    verdict: dict[str, Any]
    if trust is None:
        app_hash = signed.header.app_hash
        verdict = {"header_signatures_checked": False}
    else:
        try:
            verified = verify_signed_header(signed, trust, height=header_height)
        except HeaderVerificationError as exc:
            raise ProofFailedError(
                f"header {header_height} is not proven by the trusted validator set: {exc}") from exc
        app_hash = verified.app_hash
        verdict = {
            "header_signatures_checked": True,
            "header_hash": verified.hash.hex().upper(),
            "chain_id": verified.chain_id,
            "validators_hash": verified.validators_hash.hex().upper(),
            "signed_power": verified.signed_power,
            "total_power": verified.total_power,
            "signers": [a.hex().upper() for a in verified.signers],
        }
    try:
        verify_proof(app_hash, res.key, res.value, Proof.decode(res.proof))
    except ProofError as exc:
        raise ProofFailedError(
            f"the answer's Merkle proof does not verify against the app hash of block {header_height}: {exc}") from exc
    return {"verified": True, "app_hash": app_hash.hex(), "header_height": header_height, **verdict}
