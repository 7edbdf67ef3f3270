"""Test support: an in-memory chain driven block by block, and signing helpers."""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.context import BlockContext, TxResult
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from fedledger.abci_app.tx import sign_tx

CHAIN = "test-chain"


class Signer:
    """A key with its own nonce counter."""

    def __init__(self, seed: int) -> None:
        self.key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"seed%d" % seed).digest())
        self.nonce = 0
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self.hex = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def tx(self, tx_type: str, body: dict[str, Any], nonce: int | None = None, chain: str = CHAIN) -> bytes:
        if nonce is None:
            self.nonce += 1
            nonce = self.nonce
        return sign_tx(self.key, tx_type, body, chain, nonce)


class Chain:
    """Drives a StateMachine like CometBFT would: init_chain, then finalize_block + commit per block."""

    def __init__(self, store: CommittedStore) -> None:
        self.store = store
        self.sm = StateMachine(store, CHAIN)
        self.sm.init_chain(CHAIN, b"")
        self.height = 0

    def block(self, *txs: bytes) -> list[TxResult]:
        self.height += 1
        ctx = BlockContext(height=self.height, time_ns=self.height * 10**9,
                           block_hash=hashlib.sha256(b"%d" % self.height).digest(), chain_id=CHAIN)
        results, _ = self.sm.finalize_block(ctx, list(txs))
        self.sm.commit()
        return results

    def ok(self, *txs: bytes) -> list[TxResult]:
        results = self.block(*txs)
        for r in results:
            assert r.code == 0, r.log
        return results




def model_ref(tag: str) -> dict[str, Any]:
    digest = hashlib.sha256(tag.encode()).hexdigest()
    return {"cid": "bafkrei" + "a" * 52, "sha256": digest, "size": 100}
