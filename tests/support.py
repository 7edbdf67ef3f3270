"""Test support: an in-memory chain driven block by block, and signing helpers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.context import BlockContext, TxResult, ValidatorUpdate
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

    def admit(self, role: str, **kwargs: Any) -> bytes:
        """An admit tx carrying a fresh credential for this key."""
        return self.tx("admit", {"credential": credential(self.key, role, **kwargs)})

    def tx(self, tx_type: str, body: dict[str, Any], nonce: int | None = None, chain: str = CHAIN) -> bytes:
        if nonce is None:
            self.nonce += 1
            nonce = self.nonce
        return sign_tx(self.key, tx_type, body, chain, nonce)


ISSUER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"test-issuer").digest())
ORG = "test-org"
POLICY = {"epsilon": "8", "delta": "1e-5", "org_epsilon": None}
DP = {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 10, "clip_norm": "1"}


def genesis(cap: int = 100, issuers: list[Ed25519PrivateKey] | None = None) -> bytes:
    """Genesis app_state with one organization whose issuer is ISSUER."""
    from fedledger.abci_app.canonical import canonical_bytes
    from fedledger.abci_app.did.didkey import did_from_private_key

    return canonical_bytes({"identity": {"organizations": [{
        "id": ORG, "name": "Test org", "enrollment_cap": cap,
        "issuers": [did_from_private_key(k) for k in (issuers or [ISSUER])]}]}})


def credential(subject: Ed25519PrivateKey, role: str, *, issuer: Ed25519PrivateKey = ISSUER, org: str = ORG,
               tasks: list[str] | None = None, valid_from: str = "1970-01-01T00:00:00Z",
               valid_until: str = "2100-01-01T00:00:00Z", cred_id: str | None = None) -> dict[str, Any]:
    """An admission VC for `subject`, signed by `issuer`."""
    from fedledger.abci_app.did.didkey import did_from_private_key
    from fedledger.abci_app.did.vc import issue_admission_credential

    subject_did = did_from_private_key(subject)
    return issue_admission_credential(issuer, did_from_private_key(issuer), subject_did, org, role, tasks or [],
                                      valid_from, valid_until, cred_id or f"urn:test:{subject_did[-12:]}:{role}")


class Chain:
    """Drives a StateMachine like CometBFT would: init_chain, then finalize_block + commit per block."""

    def __init__(self, store: CommittedStore, app_state: bytes | None = None,
                 validators: Sequence[ValidatorUpdate] = ()) -> None:
        self.store = store
        self.sm = StateMachine(store, CHAIN)
        self.sm.init_chain(CHAIN, genesis() if app_state is None else app_state, validators)
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


def find_cometbft() -> Path | None:
    """The pinned CometBFT the way the product finds it ($COMETBFT_BIN, bin dir, PATH), or None."""
    from fedledger.localnet.binaries import find_pinned
    from fedledger.localnet.cometbft import check_cometbft, default_bin_dir

    return find_pinned("COMETBFT_BIN", default_bin_dir(), "cometbft", check_cometbft, log=lambda _m: None)


def find_ipfs() -> Path | None:
    """The pinned Kubo the way the product finds it ($IPFS_BIN, bin dir, PATH), or None."""
    from fedledger.localnet.binaries import find_pinned
    from fedledger.localnet.cometbft import default_bin_dir
    from fedledger.localnet.kubo import check_ipfs_binary

    return find_pinned("IPFS_BIN", default_bin_dir(), "ipfs", check_ipfs_binary, log=lambda _m: None)


def use_pinned_cometbft() -> Callable[[], None]:
    """Point $COMETBFT_BIN at the pinned CometBFT (skip the test without one); return the undo."""
    import os

    import pytest

    from fedledger.localnet.cometbft import COMETBFT_VERSION

    cometbft = find_cometbft()
    if cometbft is None:
        pytest.skip(f"no cometbft {COMETBFT_VERSION} binary (set COMETBFT_BIN or run `make binaries`)")
    old = os.environ.get("COMETBFT_BIN")
    os.environ["COMETBFT_BIN"] = str(cometbft)

    def restore() -> None:
        if old is None:
            os.environ.pop("COMETBFT_BIN", None)
        else:
            os.environ["COMETBFT_BIN"] = old

    return restore


def named_key(name: str) -> Any:
    """A client Key derived from its name (the same name gives the same key in every run)."""
    from fedledger.sdk.keys import Key

    return Key(name, Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest()))


def payload_ref(tag: str) -> dict[str, Any]:
    """A syntactically valid, distinct payload reference (CIDv1 base32, sha256, size); never fetched."""
    digest = hashlib.sha256(tag.encode()).hexdigest()
    return {"cid": "bafkrei" + digest[:52].translate(str.maketrans("0189", "wxyz")), "sha256": digest, "size": 100}
