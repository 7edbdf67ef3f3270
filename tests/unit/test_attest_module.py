"""The attestation chain module: SEV-SNP evidence verified in consensus at block time, recorded with its verdict,
and `require_tee` gating inference-node registration.

Real evidence: tests/unit/fixtures/sevsnp/ (github.com/virtee/sev at 9cf2adbffa209cc5becf7ff89ffdf624e7278ced).
Positive binding paths use the TEST ROOT of tests/sevsnp_support.py, swapped in for AMD's pinned roots only here
(handlers.ROOTS, monkeypatched).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from fedledger.abci_app.attest.verify import binding_digest
from fedledger.abci_app.context import BlockContext, TxResult
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.attestation import handlers
from fedledger.abci_app.store import CommittedStore
from tests.inference_support import TASK, InferenceWorld, inference_genesis, query
from tests.sevsnp_support import SnpTestChain, make_test_chain, real_report, real_vcek
from tests.support import CHAIN, Chain, Signer

REAL_MEASUREMENT = ("7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b5"
                    "79ea158d3e1a0dc39b2c60bd95b9c480cd81841f")
TEST_MEASUREMENT = (b"\x11" * 48).hex()
START = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())


class TimedChain(Chain):
    """A Chain whose block time is a real date (the evidence's certificates are valid 2023-2030), movable."""

    def __init__(self, store: CommittedStore, app_state: bytes | None = None) -> None:
        self.time_s = START
        super().__init__(store, app_state)

    def block(self, *txs: bytes) -> list[TxResult]:
        self.height += 1
        self.time_s += 5
        ctx = BlockContext(height=self.height, time_ns=self.time_s * 10**9,
                           block_hash=hashlib.sha256(b"%d" % self.height).digest(), chain_id=CHAIN)
        results, _ = self.sm.finalize_block(ctx, list(txs))
        self.sm.commit()
        return results


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def evidence(signer: Signer, report: bytes, vcek: bytes, **extra: Any) -> bytes:
    return signer.tx("submit_attestation", {"did": did_from_private_key(signer.key), "report": _b64(report),
                                            "vcek_cert": _b64(vcek), **extra})


@pytest.fixture
def world() -> Iterator[InferenceWorld]:
    store = CommittedStore(":memory:")
    try:
        yield InferenceWorld(TimedChain(store, inference_genesis()), nodes=1)
    finally:
        store.close()


@pytest.fixture(scope="module")
def test_root() -> SnpTestChain:
    return make_test_chain()


@pytest.fixture
def tee_world(world: InferenceWorld, test_root: SnpTestChain,
              monkeypatch: pytest.MonkeyPatch) -> InferenceWorld:
    """The TEST ROOT trusted in place of AMD's, and a task that requires a TEE (test measurement, TCB 3/0/8/115)."""
    monkeypatch.setattr(handlers, "ROOTS", test_root.roots)
    world.chain.ok(world.owner.tx("set_inference_policy", {
        "task_id": TASK, "tier": "general", "k": 1, "require_tee": {
            "measurements": [TEST_MEASUREMENT],
            "min_tcb": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}}}))
    return world


def record(world: InferenceWorld, signer: Signer) -> dict[str, Any]:
    rec: dict[str, Any] = query(world.chain, f"/attestation/{did_from_private_key(signer.key)}")
    return rec


def bound_report(root: SnpTestChain, signer: Signer, **fields: Any) -> bytes:
    data = binding_digest(did_from_private_key(signer.key), bytes.fromhex(signer.hex)) + b"\x00" * 32
    return root.report(report_data=data, **fields)


def test_real_report_is_verified_on_chain_and_refused_for_not_binding_the_did(world: InferenceWorld) -> None:
    node = world.nodes[0]
    (res,) = world.chain.ok(evidence(node, real_report(), real_vcek()))
    rec = record(world, node)
    assert rec["verdict"] == "refused" and rec["reason"] == "binding" and rec["family"] == "Milan"
    assert rec["measurement"] == REAL_MEASUREMENT and rec["chip_id"] == "d49554ec717f4e5b"
    assert rec["tcb"] == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115, "fmc": 0}
    assert rec["expires_at"] == 0 and rec["key"] == node.hex and not rec["debug"]
    assert ("verdict", "refused") in res.events[0].attributes


def test_forged_and_expired_real_evidence_is_recorded_with_its_reason(world: InferenceWorld) -> None:
    node = world.nodes[0]
    forged = bytearray(real_report())
    forged[0x2A0] ^= 1
    world.chain.ok(evidence(node, bytes(forged), real_vcek()))
    assert record(world, node)["reason"] == "forged_signature"
    world.chain.ok(evidence(node, real_report(), real_vcek()[:-1] + bytes([real_vcek()[-1] ^ 1])))
    assert record(world, node)["reason"] in ("wrong_root", "malformed")
    assert isinstance(world.chain, TimedChain)
    world.chain.time_s = int(datetime(2030, 4, 4, tzinfo=UTC).timestamp())
    world.chain.ok(evidence(node, real_report(), real_vcek()))
    rec = record(world, node)
    assert rec["reason"] == "expired" and "VCEK" in rec["detail"]
    version1 = b"\x01" + real_report()[1:]
    world.chain.ok(evidence(node, version1, real_vcek()))
    rec = record(world, node)
    assert rec["reason"] == "malformed" and rec["tcb"] is None and rec["measurement"] == ""


def test_bad_submissions_fail_the_tx(world: InferenceWorld) -> None:
    node, other = world.nodes[0], world.client
    body = {"did": did_from_private_key(node.key), "report": _b64(real_report()), "vcek_cert": _b64(real_vcek())}
    (res,) = world.chain.block(other.tx("submit_attestation", body))
    assert res.code == Code.UNAUTHORIZED and "own DID" in res.log
    (res,) = world.chain.block(Signer(99).tx("submit_attestation", body))
    assert res.code == Code.UNAUTHORIZED
    (res,) = world.chain.block(node.tx("submit_attestation", {**body, "report": "not base64!"}))
    assert res.code == Code.ATTESTATION_INVALID and "base64" in res.log
    (res,) = world.chain.block(node.tx("submit_attestation", {**body, "report": _b64(real_report()[:-8])}))
    assert res.code == Code.ATTESTATION_INVALID and "1184-byte" in res.log
    (res,) = world.chain.block(node.tx("submit_attestation", {**body, "extra": 1}))
    assert res.code == Code.INVALID_BODY
    res_q = world.chain.sm.query(f"/attestation/{did_from_private_key(node.key)}", b"", False)
    assert res_q.code == Code.QUERY_NOT_FOUND


def _register(world: InferenceWorld, signer: Signer, port: int = 8200) -> TxResult:
    (res,) = world.chain.block(signer.tx("register_inference_node", {"endpoint": f"http://127.0.0.1:{port}",
                                                                     "tasks": [TASK]}))
    return res


def _new_node(world: InferenceWorld, seed: int) -> Signer:
    node = Signer(seed)
    world.chain.ok(node.admit("inference"))
    return node


def test_require_tee_refuses_a_node_without_attestation_then_admits_an_attested_one(
        tee_world: InferenceWorld, test_root: SnpTestChain) -> None:
    w = tee_world
    assert query(w.chain, f"/inference-policy/{TASK}")["require_tee"]["measurements"] == [TEST_MEASUREMENT]
    node = _new_node(w, 70)
    res = _register(w, node)
    assert res.code == Code.ATTESTATION_REQUIRED and "submit_attestation first" in res.log
    w.chain.ok(evidence(node, bound_report(test_root, node), test_root.vcek_der))
    rec = record(w, node)
    assert rec["verdict"] == "valid" and rec["reason"] == "" and rec["expires_at"] == rec["time"] + 7 * 24 * 3600
    assert _register(w, node).code == 0
    # an already registered node that never attested cannot move its endpoint on this task either
    assert _register(w, w.nodes[0], 8300).code == Code.ATTESTATION_REQUIRED


def test_require_tee_refuses_expired_refused_and_other_key_attestations(
        tee_world: InferenceWorld, test_root: SnpTestChain) -> None:
    w = tee_world
    node = _new_node(w, 71)
    w.chain.ok(evidence(node, bound_report(test_root, node), test_root.vcek_der))
    assert isinstance(w.chain, TimedChain)
    w.chain.time_s += 7 * 24 * 3600
    res = _register(w, node)
    assert res.code == Code.ATTESTATION_REQUIRED and "expired" in res.log
    w.chain.ok(evidence(node, test_root.report(), test_root.vcek_der))  # not bound to this DID
    res = _register(w, node)
    assert res.code == Code.ATTESTATION_INVALID and "binding" in res.log


@pytest.mark.parametrize(("fields", "needle"), [
    ({"measurement": b"\x22" * 48}, "allowed measurements"),
    ({"policy": 0x30000 | 1 << 19}, "debugging"),
])
def test_require_tee_policy_refuses_measurement_and_debug(tee_world: InferenceWorld, test_root: SnpTestChain,
                                                          fields: dict[str, Any], needle: str) -> None:
    node = _new_node(tee_world, 72)
    tee_world.chain.ok(evidence(node, bound_report(test_root, node, **fields), test_root.vcek_der))
    assert record(tee_world, node)["verdict"] == "valid"  # the evidence is genuine; the task's policy says no
    res = _register(tee_world, node)
    assert res.code == Code.ATTESTATION_POLICY and needle in res.log


def test_require_tee_policy_refuses_low_tcb(tee_world: InferenceWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    low = make_test_chain(tcb=(3, 0, 7, 115))  # a VCEK for the lower TCB, under another TEST root
    monkeypatch.setattr(handlers, "ROOTS", low.roots)
    node = _new_node(tee_world, 73)
    tee_world.chain.ok(evidence(node, bound_report(low, node, tcb=bytes([3, 0, 0, 0, 0, 0, 7, 115])),
                                low.vcek_der))
    assert record(tee_world, node)["verdict"] == "valid"
    res = _register(tee_world, node)
    assert res.code == Code.ATTESTATION_POLICY and "below the task's minimum" in res.log


def test_real_amd_roots_refuse_the_test_root(world: InferenceWorld, test_root: SnpTestChain) -> None:
    node = world.nodes[0]
    world.chain.ok(evidence(node, bound_report(test_root, node), test_root.vcek_der))
    assert record(world, node)["reason"] == "wrong_root"


def test_require_tee_body_is_validated(world: InferenceWorld) -> None:
    for bad in ({"measurements": ["zz"], "min_tcb": {"bootloader": 0, "tee": 0, "snp": 0, "microcode": 0}},
                {"measurements": [], "min_tcb": {"bootloader": 0}},
                {"measurements": [TEST_MEASUREMENT] * 2,
                 "min_tcb": {"bootloader": 0, "tee": 0, "snp": 0, "microcode": 0}}):
        (res,) = world.chain.block(world.owner.tx("set_inference_policy", {"task_id": TASK, "tier": "general",
                                                                           "k": 1, "require_tee": bad}))
        assert res.code == Code.INVALID_BODY and "require_tee" in res.log
