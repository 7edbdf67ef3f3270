"""The submit_inference_proof tx body: a proof, its request, and the proving node's signature over them."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.modules.zk.msgs import proof_digest, proof_statement
from fedledger.sdk.zk.proof import Proof

__all__ = ["signed_proof_body"]


def signed_proof_body(node_key: Ed25519PrivateKey, proof: Proof, *, task_id: str, version: int, request_id: str,
                      input_mode: str) -> dict[str, Any]:
    """The tx body, signed by the node: with its signature, an invalid proof is on the node's record."""
    digest = proof_digest(proof.proof, list(proof.instances))
    sig = node_key.sign(proof_statement(task_id, version, request_id, input_mode, digest)).hex()
    return {"task_id": task_id, "version": version, "request_id": request_id, "input_mode": input_mode,
            "proof": base64.b64encode(proof.proof).decode(), "instances": list(proof.instances),
            "node": did_from_private_key(node_key), "node_signature": sig}
