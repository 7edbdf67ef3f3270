"""Signing inference receipts (the node side) and checking a set of them (the client side)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.modules.inference.receipts import Receipt, parse_receipt, signing_bytes
from fedledger.sdk.inference.canonical import canonical_output, input_hash

__all__ = ["ReceiptSigner", "sign_receipt"]


def sign_receipt(key: Ed25519PrivateKey, *, task_id: str, version: int, request_id: str,
                 inputs: Mapping[str, npt.NDArray[Any]], outputs: Mapping[str, npt.NDArray[Any]], height: int,
                 segment: str = "full", prev: str = "", did: str | None = None, check: bool = True) -> Receipt:
    """A node's signed receipt for running `inputs` to `outputs`.

    With check (the default) the receipt goes through parse_receipt, signature included, before
    it is returned. A node signing on its serving path passes check=False and its cached `did`:
    the fields are built here from validated values, and verifying its own signature would double
    the cost of every answer for nothing (every client and the chain verify it anyway).
    """
    out = canonical_output(outputs)
    unsigned: dict[str, Any] = {
        "task_id": task_id, "version": version, "segment": segment, "request_id": request_id,
        "input_hash": input_hash(inputs), "output_hash": out.output_hash,
        "q": list(out.q) if out.q is not None else None, "node": did or did_from_private_key(key), "height": height,
        "prev": prev,
    }
    sig = key.sign(signing_bytes(unsigned)).hex()
    if check:
        return parse_receipt({**unsigned, "sig": sig})
    return Receipt(task_id=task_id, version=version, segment=segment, request_id=request_id,
                   input_hash=unsigned["input_hash"], output_hash=out.output_hash, q=out.q, node=unsigned["node"],
                   height=height, prev=prev, sig=sig)


class ReceiptSigner:
    """A node's signer: its key, and what it serves (task, segment), filled in per request with the height."""

    def __init__(self, key: Ed25519PrivateKey, task_id: str, segment: str = "full") -> None:
        self.key, self.task_id, self.segment = key, task_id, segment
        self.did = did_from_private_key(key)

    def sign(self, *, version: int, request_id: str, inputs: Mapping[str, npt.NDArray[Any]],
             outputs: Mapping[str, npt.NDArray[Any]], height: int, prev: str = "") -> Receipt:
        """Sign one answer."""
        return sign_receipt(self.key, task_id=self.task_id, version=version, request_id=request_id, inputs=inputs,
                            outputs=outputs, height=height, segment=self.segment, prev=prev, did=self.did,
                            check=False)
