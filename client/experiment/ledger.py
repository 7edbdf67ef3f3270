"""The chain as a library: FedLedger's StateMachine over an in-memory store, driven block by block.

This is what CometBFT does to the app, minus consensus and networking: one `finalize_block` and
`commit` per block, with the block hash (the chain's only randomness) derived from the run's seed
and the height. Members are admitted with real W3C credentials from one organization's issuer,
and every tx is signed, so admission, the privacy debit, round selection, SecAgg stages,
reputation and the version lifecycle run exactly as on a validator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import BlockContext, TxResult
from fedledger.abci_app.identity.didkey import did_from_private_key
from fedledger.abci_app.identity.vc import issue_admission_credential
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from fedledger.abci_app.tx import sign_tx

__all__ = ["CHAIN_ID", "Ledger", "LedgerError", "Member", "content_ref"]

CHAIN_ID = "fedledger-experiment"
ORG = "experiment-org"


class LedgerError(RuntimeError):
    """The chain refused a tx the experiment expected to pass (a harness bug, never an attack outcome)."""


def content_ref(data: bytes) -> dict[str, Any]:
    """A payload reference for bytes: a CIDv1-shaped name (base32 of its sha256), the sha256 and the size."""
    digest = hashlib.sha256(data).digest()
    cid = "b" + base64.b32encode(digest).decode().lower().rstrip("=")
    return {"cid": cid, "sha256": digest.hex(), "size": max(1, len(data))}


@dataclass
class Member:
    """A key enrolled on the chain, with its own nonce counter."""

    name: str
    key: Ed25519PrivateKey
    nonce: int = 0
    hex: str = field(init=False)
    did: str = field(init=False)

    def __post_init__(self) -> None:
        self.hex = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.did = did_from_private_key(self.key)

    def tx(self, tx_type: str, body: dict[str, Any]) -> bytes:
        """Sign a tx with this member's next nonce."""
        self.nonce += 1
        return sign_tx(self.key, tx_type, body, CHAIN_ID, self.nonce)


def _key(seed: bytes, name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed + b"/key/" + name.encode()).digest())


class Ledger:
    """An in-memory FedLedger chain with an admin, an aggregator, trainers and evaluators admitted at height 1."""

    def __init__(self, seed: bytes, trainers: int, evaluators: int = 1) -> None:
        self.seed = seed
        self.issuer = _key(seed, "issuer")
        self.store = CommittedStore(":memory:")
        self.sm = StateMachine(self.store, CHAIN_ID)
        genesis = {"identity": {"organizations": [{
            "id": ORG, "name": "Experiment consortium", "enrollment_cap": trainers + evaluators + 2,
            "issuers": [did_from_private_key(self.issuer)]}]}}
        self.sm.init_chain(CHAIN_ID, canonical_bytes(genesis))
        self.height = 0
        self.commit_seconds: list[float] = []  # FinalizeBlock + Commit of each block, measured
        self.admin = Member("admin", _key(seed, "admin"))
        self.aggregator = Member("aggregator", _key(seed, "aggregator"))
        self.trainers = [Member(f"trainer{i}", _key(seed, f"trainer{i}")) for i in range(trainers)]
        self.evaluators = [Member(f"evaluator{i}", _key(seed, f"evaluator{i}")) for i in range(evaluators)]
        self.ok(self._admit(self.admin, "validator-admin"), self._admit(self.aggregator, "aggregator"),
                *[self._admit(t, "trainer") for t in self.trainers],
                *[self._admit(e, "evaluator") for e in self.evaluators])

    def _admit(self, member: Member, role: str) -> bytes:
        vc = issue_admission_credential(self.issuer, did_from_private_key(self.issuer), member.did, ORG, role, [],
                                        "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z",
                                        f"urn:experiment:{member.name}")
        return member.tx("admit", {"credential": vc})

    def block(self, *txs: bytes) -> list[TxResult]:
        """Finalize and commit one block holding txs; returns each tx's result."""
        self.height += 1
        ctx = BlockContext(height=self.height, time_ns=self.height * 10**9,
                           block_hash=hashlib.sha256(self.seed + b"/block/%d" % self.height).digest(),
                           chain_id=CHAIN_ID)
        started = time.perf_counter()
        results, _ = self.sm.finalize_block(ctx, list(txs))
        self.sm.commit()
        self.commit_seconds.append(time.perf_counter() - started)
        return results

    def ok(self, *txs: bytes) -> list[TxResult]:
        """A block whose every tx must pass; LedgerError with the chain's log otherwise."""
        results = self.block(*txs)
        for r in results:
            if r.code != 0:
                raise LedgerError(f"tx refused at height {self.height} (code {r.code}): {r.log}")
        return results

    def query(self, path: str) -> Any:
        """A committed-state query, decoded from JSON."""
        res = self.sm.query(path, b"", False)
        if res.code != 0:
            raise LedgerError(f"query {path} failed (code {res.code}): {res.log}")
        return json.loads(res.value)

    def close(self) -> None:
        """Release the store."""
        self.store.close()
