"""zkDPS with real ezkl: norm-bound circuits, client proofs, and the chain verifying them at commit time.

One dev SRS, two norm circuits over d = 16 (clip 1.0 for task "digits", clip 2.0 for task "other")
and two proofs (an update of norm 0.9, and an over-bound one of norm 1.5 made with the raw prover,
bypassing the client's refusal) are built per module. Set FEDLEDGER_ZK_TEST_CACHE to keep them.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.credentials import ROLES
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.abci_app.modules.zk import verifier
from fedledger.abci_app.modules.zk.instances import FIELD_MODULUS
from fedledger.abci_app.store import CommittedStore
from fedledger.client.runner import contribute_update
from fedledger.ipfs import EmbeddedStore
from fedledger.node.compliance_check import update_hash_mismatch
from fedledger.sdk.compliance.errors import NormBoundExceededError
from fedledger.sdk.compliance.prover import NormCircuit, NormProof, prove_norm
from fedledger.sdk.errors import TxRejectedError
from fedledger.sdk.submit import TxOutcome
from fedledger.sdk.zk.errors import ZkProofError
from fedledger.sdk.zk.proof import input_hash_of, prove, verify_proof, witness_outputs
from fedledger.sdk.zk.setup import SCALE
from fedledger.sdk.zk.srs import SrsFile, dev_srs
from tests.support import ISSUER, ORG, Chain, Signer, model_ref

DIM = 16
LOGROWS = 15
TASK, OTHER = "digits", "other"


def _unit(seed: int) -> np.ndarray:
    v = np.random.RandomState(seed).randn(DIM)
    return (v / np.linalg.norm(v)).astype(np.float64)


WITHIN = (_unit(1) * 0.9).astype(np.float32)
OVER = (_unit(2) * 1.5).astype(np.float32)


@dataclass(frozen=True)
class Kit:
    srs: SrsFile
    c1: NormCircuit  # clip 1.0
    c2: NormCircuit  # clip 2.0
    within: NormProof
    over: NormProof  # a valid ezkl proof whose output is 0 (not within bound)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    cache = Path(os.environ.get("FEDLEDGER_ZK_TEST_CACHE") or tmp_path_factory.mktemp("compliance"))
    srs = dev_srs(cache / f"dev-srs-{LOGROWS}", LOGROWS)
    c1 = NormCircuit.build(TASK, "1.0", DIM, srs, cache)
    c2 = NormCircuit.build(OTHER, "2.0", DIM, srs, cache)
    return Kit(srs=srs, c1=c1, c2=c2, within=prove_norm(c1, WITHIN), over=NormProof(prove(c1.setup, OVER)))


# --- the circuit and the client's prover -------------------------------------------------------------------

def test_within_bound_update_proves_and_verifies_bound_to_its_hash(kit: Kit) -> None:
    p = kit.within
    assert p.proof.outputs == (1,) and len(p.proof.instances) == 2
    assert p.update_hash == input_hash_of(WITHIN, SCALE)
    assert p.update_hash != input_hash_of(OVER, SCALE)
    v = verifier.ZkVerifier(kit.srs.path)
    try:
        verify_proof(p.proof, kit.c1.setup.settings, kit.c1.setup.vk, v)
        with pytest.raises(ZkProofError):  # the same proof under the clip-2.0 circuit's vk
            verify_proof(p.proof, kit.c2.setup.settings, kit.c2.setup.vk, v)
    finally:
        v.close()
    print(f"norm proof: {len(p.proof.proof)} bytes, logrows {kit.c1.setup.facts.logrows}")


def test_over_bound_update_is_refused_by_the_prover_and_proves_zero(kit: Kit) -> None:
    with pytest.raises(NormBoundExceededError):
        prove_norm(kit.c1, OVER)
    assert kit.over.proof.outputs == (0,)  # the raw proof exists, but says "not within bound"
    far = np.zeros(DIM, dtype=np.float32)
    far[0] = 1e6  # beyond ezkl's range checks: no witness at all
    with pytest.raises(NormBoundExceededError):
        prove_norm(kit.c1, far)


def test_the_bound_is_exact_up_to_the_stated_slack(kit: Kit) -> None:
    # Witness only (no proof): the circuit's verdict at norms just inside and just outside C = 1.
    eps = 2.0 ** -(SCALE - 4)
    for norm_sq, expected in ((1 - eps, 1.0), (1 + eps, 0.0), (0.25, 1.0), (4.0, 0.0)):
        x = (_unit(3) * np.sqrt(norm_sq)).astype(np.float32)
        assert witness_outputs(kit.c1.setup, x) == [expected], norm_sq


def test_the_vk_commits_to_the_clip_bound(kit: Kit) -> None:
    # The clip is a constant of the circuit (a fixed param), so the vk commits to it.
    assert kit.c1.setup.vk_sha256 != kit.c2.setup.vk_sha256
    assert kit.c1.setup.artifact_sha256 != kit.c2.setup.artifact_sha256


# --- the chain at commit time ------------------------------------------------------------------------------

def _genesis(srs_sha256: str) -> bytes:
    return canonical_bytes({
        "identity": {"organizations": [{"id": ORG, "name": "Test org", "enrollment_cap": 100, "roles": list(ROLES),
                                        "issuers": [did_from_private_key(ISSUER)]}]},
        "zk": {"srs_sha256": srs_sha256, "srs_logrows": LOGROWS}})


@dataclass
class World:
    chain: Chain
    owner: Signer
    agg: Signer
    trainers: list[Signer]

    def create(self, task: str, circuit: NormCircuit | None) -> list[int]:
        body: dict[str, Any] = {"task_id": task, "model_spec": "mlp-digits", "round_size": 3, "min_contributions": 1,
                                "deadline_blocks": 30, "aggregator": self.agg.hex, "initial_model": model_ref("v0"),
                                "privacy": None}
        if circuit is not None:
            body["norm_proof"] = circuit.task_param()
        return [r.code for r in self.chain.block(self.owner.tx("create_task", body))]

    def commit(self, task: str, proof: Any, trainer: int = 0, tag: str = "u") -> list[Any]:
        body: dict[str, Any] = {"task_id": task, "round": 1, "base_version": 0, "num_examples": 10, "dp": None,
                                **model_ref(tag)}
        if proof is not None:
            body["norm_proof"] = proof
        return self.chain.block(self.trainers[trainer].tx("commit_contribution", body))


@pytest.fixture()
def world(kit: Kit, tmp_path: Path) -> Iterator[World]:
    verifier.configure(kit.srs.path)
    chain = Chain(CommittedStore(tmp_path / "s.db"), _genesis(kit.srs.sha256))
    w = World(chain, Signer(10), Signer(11), [Signer(20 + i) for i in range(3)])
    chain.ok(w.owner.admit("validator-admin"), w.agg.admit("aggregator"), *[t.admit("trainer") for t in w.trainers])
    assert w.create(TASK, kit.c1) == [0] and w.create(OTHER, kit.c2) == [0] and w.create("plain", None) == [0]
    chain.ok(*[w.agg.tx("open_round", {"task_id": t, "round": 1}) for t in (TASK, OTHER, "plain")])
    yield w
    verifier.configure(None)


def _contribution(chain: Chain, task: str, who: Signer) -> Any:
    res = chain.sm.query(f"/contribution/{task}/1/{who.hex}", b"", False)
    return json.loads(res.value) if res.code == 0 else None


def test_a_verified_proof_is_recorded_on_the_contribution(world: World, kit: Kit) -> None:
    start = time.perf_counter()
    res = world.commit(TASK, kit.within.body())
    block_s = time.perf_counter() - start
    assert [r.code for r in res] == [0], res[0].log
    rec = _contribution(world.chain, TASK, world.trainers[0])
    assert rec is not None, "no contribution query at /contribution/<task>/<round>/<signer>"
    assert rec["norm_proof"] == "verified" and rec["update_hash"] == kit.within.update_hash
    assert update_hash_mismatch(rec, WITHIN) is None and update_hash_mismatch(rec, OVER) is not None
    print(f"block with one norm-proof verification: {block_s * 1000:.0f} ms")


def test_missing_proof_is_refused_when_the_task_requires_one(world: World) -> None:
    res = world.commit(TASK, None)
    assert [r.code for r in res] == [Code.NORM_PROOF_MISSING] and "clip bound 1.0" in res[0].log
    assert _contribution(world.chain, TASK, world.trainers[0]) is None


def test_a_proof_on_a_task_without_norm_proofs_is_refused(world: World, kit: Kit) -> None:
    assert [r.code for r in world.commit("plain", kit.within.body())] == [Code.NORM_PROOF_INVALID]
    assert [r.code for r in world.commit("plain", None)] == [0]


def test_forged_proof_bytes_are_refused(world: World, kit: Kit) -> None:
    raw = bytearray(kit.within.proof.proof)
    raw[100] ^= 0x01
    body = {**kit.within.body(), "proof": base64.b64encode(bytes(raw)).decode()}
    res = world.commit(TASK, body)
    assert [r.code for r in res] == [Code.NORM_PROOF_INVALID] and "ezkl" in res[0].log
    assert _contribution(world.chain, TASK, world.trainers[0]) is None


def test_a_proof_claimed_for_another_updates_hash_is_refused(world: World, kit: Kit) -> None:
    other = int(input_hash_of(OVER, SCALE), 16) % FIELD_MODULUS
    inst = [other.to_bytes(32, "little").hex(), *kit.within.proof.instances[1:]]
    assert [r.code for r in world.commit(TASK, {**kit.within.body(), "instances": inst})] == [Code.NORM_PROOF_INVALID]


def test_a_proof_for_another_tasks_bound_is_refused(world: World, kit: Kit) -> None:
    # Proved against clip 1.0, sent to the clip-2.0 task: ezkl rejects it for that task's vk.
    assert [r.code for r in world.commit(OTHER, kit.within.body())] == [Code.NORM_PROOF_INVALID]


def test_an_over_bound_proof_is_refused_even_though_ezkl_accepts_it(world: World, kit: Kit) -> None:
    v = verifier.active()
    ok, _ = v.verify(kit.c1.setup.settings, kit.c1.setup.vk,
                     {"instances": [list(kit.over.proof.instances)], "proof": list(kit.over.proof.proof)})
    assert ok  # a genuine proof of "output 0"
    res = world.commit(TASK, kit.over.body())
    assert [r.code for r in res] == [Code.NORM_PROOF_INVALID] and "NOT within" in res[0].log
    flipped = [kit.over.proof.instances[0], (1).to_bytes(32, "little").hex()]  # claim 1 on the same proof
    assert [r.code for r in world.commit(TASK, {**kit.over.body(), "instances": flipped})] == [
        Code.NORM_PROOF_INVALID]


def test_malformed_norm_proof_fields_are_refused(world: World, kit: Kit) -> None:
    for bad in ({"proof": "!!", "instances": list(kit.within.proof.instances)},
                {"proof": kit.within.body()["proof"], "instances": ["zz"]},
                {"proof": kit.within.body()["proof"]}, "x"):
        assert [r.code for r in world.commit(TASK, bad)] in ([Code.NORM_PROOF_INVALID], [Code.INVALID_BODY]), bad


def test_a_validator_without_the_srs_halts_instead_of_skipping(world: World, kit: Kit) -> None:
    verifier.configure(None)
    env = os.environ.pop(verifier.SRS_ENV, None)
    try:
        with pytest.raises(RuntimeError, match="no SRS configured"):
            world.commit(TASK, kit.within.body())
    finally:
        if env is not None:
            os.environ[verifier.SRS_ENV] = env
        verifier.configure(kit.srs.path)


class _ChainSubmitter:
    """The Submitter interface over the in-process chain: signs with one trainer's key, one tx per block."""

    def __init__(self, chain: Chain, signer: Signer) -> None:
        self.chain, self.signer = chain, signer

    def send(self, tx_type: str, body: dict[str, Any], timeout: float = 30.0) -> TxOutcome:
        (res,) = self.chain.block(self.signer.tx(tx_type, body))
        if res.code != 0:
            raise TxRejectedError("FinalizeBlock", res.code, res.log)
        return TxOutcome("", self.chain.height, [])


def test_the_clients_commit_path_carries_the_proof(world: World, kit: Kit, tmp_path: Path) -> None:
    sub: Any = _ChainSubmitter(world.chain, world.trainers[1])
    store = EmbeddedStore(tmp_path / "store")
    contribute_update(sub, store, TASK, 1, 0, b"the update's payload", 10, None,  # type: ignore[arg-type]
                      norm_proof=kit.within.body())  # (the fake submitter is duck-typed)
    rec = _contribution(world.chain, TASK, world.trainers[1])
    assert rec["norm_proof"] == "verified" and rec["update_hash"] == kit.within.update_hash
    with pytest.raises(TxRejectedError, match="code 85: .*requires a proof"):
        other: Any = _ChainSubmitter(world.chain, world.trainers[2])
        contribute_update(other, store, TASK, 1, 0, b"x", 10, None)  # type: ignore[arg-type]


def test_create_task_refuses_a_norm_circuit_it_could_not_verify(kit: Kit, tmp_path: Path) -> None:
    no_srs = Chain(CommittedStore(tmp_path / "n.db"), canonical_bytes({"identity": {"organizations": [{
        "id": ORG, "name": "Test org", "enrollment_cap": 100, "roles": list(ROLES),
        "issuers": [did_from_private_key(ISSUER)]}]}}))
    w = World(no_srs, Signer(10), Signer(11), [])
    no_srs.ok(w.owner.admit("validator-admin"), w.agg.admit("aggregator"))
    assert w.create(TASK, kit.c1) == [Code.ZK_SRS]  # this chain pins no SRS
    param = kit.c1.task_param()
    for bad in ({**param, "clip": "-1"}, {**param, "clip": 1}, {**param, "vk": "not base64!"},
                {**param, "settings": base64.b64encode(b"not zlib").decode()}, {"clip": "1.0"}):
        body: dict[str, Any] = {"task_id": "bad", "model_spec": "mlp-digits", "round_size": 3,
                                "min_contributions": 1, "deadline_blocks": 30, "aggregator": w.agg.hex,
                                "initial_model": model_ref("v0"), "privacy": None, "norm_proof": bad}
        (res,) = no_srs.block(w.owner.tx("create_task", body))
        assert res.code in (Code.NORM_PROOF_INVALID, Code.INVALID_BODY), (bad, res.log)
