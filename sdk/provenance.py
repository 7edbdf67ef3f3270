"""Checking a query answer against the chain: the signed header H+1, and the answer re-derived from proven records.

State after block H is committed by the app hash carried in header H+1. With a `TrustRoot` (the
validator set of a genesis file held locally), `check_query_proof` fetches /commit for H+1,
verifies that header against the trusted validators' commit signatures (light-client check, see
`lightclient.py`), then checks the answer against that header's app hash: every record the
answer was derived from carries a Merkle proof (of its value, or of its absence), each must
verify, and re-running the query on those proven records alone must give the answer received,
byte for byte (`fedledger.abci_app.query_proofs.verify_answer`). A node that lies about the
answer, a record, the proofs or the header is caught; so is one that leaves a record out or
slips one in. Listings (`/contributions`, `/versions`) are proven complete through the record
that counts them; a listing no completeness rule covers is refused, not half-checked.
Without a trust root, the same checks run against the app hash *as served by the node*, and the
verdict says so.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from fedledger.abci_app.errors import Family, VerificationError
from fedledger.abci_app.query_proofs import verify_answer
from fedledger.abci_app.store import ProofError
from fedledger.sdk.errors import ClientError
from fedledger.sdk.lightclient import (
    HeaderVerificationError,
    SignedHeader,
    TrustRoot,
    verify_signed_header,
)
from fedledger.sdk.rpc import AbciQueryResult

__all__ = ["CommitSource", "ProofFailedError", "check_query_proof"]


class ProofFailedError(ClientError, VerificationError):
    """A query answer does not match the chain: the node lied or the data was tampered with in transit."""

    family = Family.CRYPTO
    error_code = "PROOF_FAILED"


class CommitSource(Protocol):
    """What the check needs from a node: its latest height and /commit (CometRPC provides both)."""

    def height(self) -> int:
        """Latest block height the node knows."""
        ...

    def commit(self, height: int) -> dict[str, Any]:
        """/commit: the signed header at height."""
        ...


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
    set, and carry valid signatures of more than 2/3 of the trusted voting power; the answer is
    then checked against that verified header's app hash: every proof op must verify, and the
    query `res.path` re-run on the proven records alone must give exactly `res`'s code, key and
    value, using every proven record. Passing `trust=None` explicitly asks for the weaker check
    against the app hash as the node serves it (`header_signatures_checked: False`).
    """
    if not res.proof_ops:
        raise ProofFailedError("the answer carries no proof: ask with prove=True, from a node that proves answers")
    if not res.path:
        raise ClientError("cannot check this answer: it does not say which query path was asked "
                          "(AbciQueryResult.path, filled in by CometRPC.abci_query)")
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
        proven = verify_answer(res.path, res.data, res.value, res.proof_ops, app_hash,
                               key=res.key, code=res.code, log=res.log, height=res.height)
    except ProofError as exc:
        raise ProofFailedError(f"the answer is not proven by the app hash of block {header_height}: {exc}") from exc
    return {"verified": True, "app_hash": app_hash.hex(), "header_height": header_height,
            "records_proven": proven.present, "absences_proven": proven.absent,
            "complete_listings": [p.decode("ascii", "backslashreplace") for p in proven.listings], **verdict}
