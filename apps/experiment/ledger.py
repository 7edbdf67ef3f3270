"""The chain as a library: FedLedger's StateMachine over an in-memory store, driven block by block.

This is what CometBFT does to the app, minus consensus and networking: one `finalize_block` and
`commit` per block, with the block hash (the chain's only randomness) derived from the run's seed
and the height. Members are admitted with real W3C credentials from one organization's issuer,
and every tx is signed, so admission, the privacy debit, round selection, SecAgg stages,
reputation and the version lifecycle run exactly as on a validator.

Byzantine trainers, when the run has any, belong to their own organization (`ATTACKER_ORG`), whose
issuer they control and whose enrollment cap is their number: the consortium admits an
organization for as many trainers as it vouches for, and the cap is what stops one from minting
more identities. `Ledger.attempt_sybils` has that issuer credential extra identities and measures
the chain refusing them (`Code.ORG_CAP`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import BlockContext, TxResult
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.did.vc import issue_admission_credential
from fedledger.abci_app.errors import ChainRejectedError, Code
from fedledger.abci_app.modules.federation.records import PayloadRef
from fedledger.abci_app.state_machine import StateMachine
from fedledger.abci_app.store import CommittedStore
from fedledger.abci_app.tx import sign_tx
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.rpc import AbciQueryResult

__all__ = ["ATTACKER_ORG", "CHAIN_ID", "ORG", "Ledger", "LedgerError", "Member", "content_ref"]

CHAIN_ID = "fedledger-experiment"
ORG = "experiment-org"
ATTACKER_ORG = "attacker-org"


class LedgerError(ChainRejectedError, RuntimeError):
    """The chain refused a tx the experiment expected to pass (a harness bug, never an attack outcome)."""

    error_code = "EXPERIMENT_LEDGER"


def content_ref(data: bytes) -> PayloadRef:
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
    """An in-memory FedLedger chain with an admin, an aggregator, trainers and evaluators admitted at height 1.

    Trainers whose index is in `byzantine` are admitted under ATTACKER_ORG (its own issuer, enrollment
    cap len(byzantine), trainer role only); the others, the admin, aggregator and evaluators under ORG.
    Which organization a trainer belongs to changes nothing else in a run (the task sets no
    organization ε budget).
    """

    def __init__(self, seed: bytes, trainers: int, evaluators: int = 1, byzantine: Collection[int] = ()) -> None:
        self.seed = seed
        self.byzantine = frozenset(byzantine)
        if not all(0 <= i < trainers for i in self.byzantine):
            raise ValueError(f"Byzantine trainer indices {sorted(self.byzantine)} must lie in [0, {trainers})")
        self.issuer = _key(seed, "issuer")
        self.attacker_issuer = _key(seed, "attacker-issuer")
        self.store = CommittedStore(":memory:")
        self.sm = StateMachine(self.store, CHAIN_ID)
        self.view = ChainView(self)  # typed records, read in process through abci_query below
        organizations: list[dict[str, Any]] = [{
            "id": ORG, "name": "Experiment consortium", "enrollment_cap": trainers + evaluators + 2,
            "issuers": [did_from_private_key(self.issuer)]}]
        if self.byzantine:
            organizations.append({
                "id": ATTACKER_ORG, "name": "The Byzantine trainers' organization",
                "enrollment_cap": len(self.byzantine), "roles": ["trainer"],
                "issuers": [did_from_private_key(self.attacker_issuer)]})
        genesis = {"identity": {"organizations": organizations}}
        self.sm.init_chain(CHAIN_ID, canonical_bytes(genesis))
        self.height = 0
        self.commit_seconds: list[float] = []  # FinalizeBlock + Commit of each block, measured
        self.admin = Member("admin", _key(seed, "admin"))
        self.aggregator = Member("aggregator", _key(seed, "aggregator"))
        self.trainers = [Member(f"trainer{i}", _key(seed, f"trainer{i}")) for i in range(trainers)]
        self.evaluators = [Member(f"evaluator{i}", _key(seed, f"evaluator{i}")) for i in range(evaluators)]
        self.sybil_attempts: list[tuple[Member, int]] = []  # each Sybil identity tried, with the chain's code
        self.ok(self._admit(self.admin, "validator-admin"), self._admit(self.aggregator, "aggregator"),
                *[self._admit(t, "trainer", i in self.byzantine) for i, t in enumerate(self.trainers)],
                *[self._admit(e, "evaluator") for e in self.evaluators])

    def _admit(self, member: Member, role: str, attacker: bool = False) -> bytes:
        issuer, org = (self.attacker_issuer, ATTACKER_ORG) if attacker else (self.issuer, ORG)
        vc = issue_admission_credential(issuer, did_from_private_key(issuer), member.did, org, role, [],
                                        "1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z",
                                        f"urn:experiment:{member.name}")
        return member.tx("admit", {"credential": vc})

    def attempt_sybils(self, n_per_attacker: int) -> tuple[int, int]:
        """Each Byzantine trainer tries to enroll n_per_attacker extra identities; (attempted, refused).

        Every Sybil holds a valid trainer credential from ATTACKER_ORG's issuer (which the attackers
        control), sent in one block. Refused counts the admissions the chain turned down with
        Code.ORG_CAP. Any other outcome raises LedgerError: a Sybil admitted past the cap means
        the chain broke its Sybil limit (and the harness cannot drive keys it did not plan as
        trainers through rounds), and another refusal code means the harness built a bad
        credential, which must not be counted as the cap at work. Each identity and its code are kept
        in sybil_attempts.
        """
        if isinstance(n_per_attacker, bool) or not isinstance(n_per_attacker, int) or n_per_attacker < 0:
            raise ValueError(f"n_per_attacker must be a non-negative integer, got {n_per_attacker!r}")
        sybils = [Member(f"sybil{i}-{j}", _key(self.seed, f"sybil{i}-{j}"))
                  for i in sorted(self.byzantine) for j in range(n_per_attacker)]
        if not sybils:
            return 0, 0
        results = self.block(*[self._admit(s, "trainer", attacker=True) for s in sybils])
        codes = [r.code for r in results]
        self.sybil_attempts.extend(zip(sybils, codes, strict=True))
        admitted = [s.name for s, c in zip(sybils, codes, strict=True) if c == 0]
        if admitted:
            raise LedgerError(f"the chain admitted Sybil identities {admitted} past {ATTACKER_ORG!r}'s enrollment cap "
                              f"of {len(self.byzantine)}")
        other = {c for c in codes if c != Code.ORG_CAP}
        if other:
            logs = sorted({r.log for r in results if r.code != Code.ORG_CAP})
            raise LedgerError(f"Sybil admissions refused with codes {sorted(other)}, not the cap: {logs}")
        return len(sybils), sum(1 for c in codes if c == Code.ORG_CAP)

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

    def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> AbciQueryResult:
        """The state machine's answer, shaped as a node's /abci_query answer (so ChainView reads it)."""
        res = self.sm.query(path, data, prove)
        return AbciQueryResult(code=res.code, log=res.log, key=res.key, value=res.value, proof=res.proof,
                               height=res.height, path=path, data=data)

    def query(self, path: str) -> Any:
        """A committed-state query, decoded from JSON (for answers no typed ChainView accessor covers)."""
        res = self.sm.query(path, b"", False)
        if res.code != 0:
            raise LedgerError(f"query {path} failed (code {res.code}): {res.log}")
        return json.loads(res.value)

    def close(self) -> None:
        """Release the store."""
        self.store.close()
