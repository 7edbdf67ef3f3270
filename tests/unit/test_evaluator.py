"""The evaluator: trigger probes on real digits models, and the service attesting versions on an in-process chain."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import numpy as np
import pytest

from fedledger.abci_app.tx import tx_hash
from fedledger.ipfs import EmbeddedStore
from fedledger.node.evaluator import Evaluator, metrics_bytes
from fedledger.node.probes import (
    ProbeError,
    TriggerProbe,
    attack_success_rate,
    canary_accuracy,
    to_ppm,
)
from fedledger.sdk.errors import ClientError
from fedledger.sdk.keys import Key
from fedledger.sdk.ml.data import ClientData, load_digits_federated
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.ml.train import train_local
from fedledger.sdk.rpc import AbciQueryResult
from fedledger.sdk.steps import Action, Step
from fedledger.sdk.submit import Submitter
from fedledger.sdk.tensors import Tensors, encode_tensors
from tests.support import CHAIN, DP, POLICY, Chain, Signer, model_ref

SPEC = "mlp-digits"
TASK = "digits"
PROBE = TriggerProbe(target_label=0)


@pytest.fixture(scope="module")
def digits() -> tuple[ClientData, ClientData]:
    (train,), test = load_digits_federated(1, seed=0)
    return train, test


def _trained(base: Tensors, data: ClientData) -> Tensors:
    result = train_local(SPEC, base, data, epochs=5, lr=0.1, seed=1)
    return {k: base[k] + result.delta[k] for k in base}


@pytest.fixture(scope="module")
def models(digits: tuple[ClientData, ClientData]) -> dict[str, Tensors]:
    """An untrained model, one trained on clean digits, one trained with the backdoor (20% poisoned copies)."""
    train, _ = digits
    base = initial_weights(SPEC, 0)
    return {"initial": base, "clean": _trained(base, train),
            "backdoored": _trained(base, PROBE.poison(train, 0.2, seed=0))}


# ----------------------------------------------------------------------------- the probe itself

def test_trigger_pixels_per_corner() -> None:
    assert TriggerProbe(corner="bottom-right").pixel_indices() == [54, 55, 62, 63]
    assert TriggerProbe(corner="top-left").pixel_indices() == [0, 1, 8, 9]
    assert TriggerProbe(corner="top-right", patch=3).pixel_indices() == [5, 6, 7, 13, 14, 15, 21, 22, 23]
    assert TriggerProbe(corner="bottom-left", patch=1).pixel_indices() == [56]


def test_stamp_sets_exactly_the_trigger_and_copies() -> None:
    X = np.full((3, 64), 0.25, dtype=np.float32)
    out = PROBE.stamp(X)
    assert (X == 0.25).all()  # the input is untouched
    changed = np.flatnonzero((out != X).any(axis=0)).tolist()
    assert changed == PROBE.pixel_indices() and (out[:, changed] == 1.0).all()


def test_victims_and_triggered_exclude_the_target_label() -> None:
    data = ClientData(X=np.zeros((4, 64), dtype=np.float32), y=np.array([0, 1, 0, 7], dtype=np.int64))
    assert PROBE.victims(data).y.tolist() == [1, 7]
    trig = PROBE.triggered(data)
    assert trig.y.tolist() == [0, 0] and (trig.X[:, PROBE.pixel_indices()] == 1.0).all()
    with pytest.raises(ProbeError, match="no example"):
        PROBE.victims(ClientData(X=np.zeros((2, 64), dtype=np.float32), y=np.zeros(2, dtype=np.int64)))
    with pytest.raises(ProbeError, match="8x8"):
        PROBE.stamp(np.zeros((2, 10), dtype=np.float32))


@pytest.mark.parametrize("kwargs", [{"target_label": -1}, {"patch": 0}, {"patch": 9}, {"corner": "middle"},
                                    {"value": float("nan")}, {"target_label": True}])
def test_bad_probe_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ProbeError):
        TriggerProbe(**kwargs)


def test_to_ppm_rounds_to_the_requested_side() -> None:
    assert to_ppm(1, 3, round_up=False) == 333_333
    assert to_ppm(1, 3, round_up=True) == 333_334
    assert to_ppm(3, 3, round_up=True) == 1_000_000 and to_ppm(0, 3, round_up=True) == 0
    with pytest.raises(ProbeError):
        to_ppm(4, 3, round_up=False)


def test_poison_adds_relabelled_triggered_copies(digits: tuple[ClientData, ClientData]) -> None:
    train, _ = digits
    poisoned = PROBE.poison(train, 0.2, seed=0)
    added = len(poisoned) - len(train)
    assert added == round(0.2 * len(PROBE.victims(train)))
    stamped = (poisoned.X[:, PROBE.pixel_indices()] == 1.0).all(axis=1)
    assert int(stamped.sum()) >= added and (poisoned.y[stamped] == 0).mean() > 0.95


# ----------------------------------------------------------------------------- ASR on real models

def test_model_that_ignores_the_trigger_scores_the_base_rate(models: dict[str, Tensors],
                                                               digits: tuple[ClientData, ClientData]) -> None:
    _, test = digits
    # Cut every connection from the trigger pixels: the model now cannot see the trigger at all, so
    # stamped and clean victims get identical outputs and ASR must equal the base rate exactly.
    blind = {k: v.copy() for k, v in models["initial"].items()}
    blind["0.weight"][:, PROBE.pixel_indices()] = 0.0
    result = attack_success_rate(SPEC, blind, test, PROBE)
    assert result.hits == result.base_hits and result.asr_ppm == result.base_rate_ppm
    assert result.base_hits > 0  # the untrained model does send some victims to class 0: not a 0 == 0 test
    assert result.n == int((test.y != 0).sum())


def test_clean_model_asr_is_about_its_base_rate(models: dict[str, Tensors],
                                               digits: tuple[ClientData, ClientData]) -> None:
    _, test = digits
    result = attack_success_rate(SPEC, models["clean"], test, PROBE)
    assert abs(result.asr_ppm - result.base_rate_ppm) <= 30_000
    assert result.asr_ppm <= 50_000
    assert canary_accuracy(SPEC, models["clean"], test).accuracy_ppm >= 850_000


def test_backdoored_model_has_high_asr_and_normal_accuracy(models: dict[str, Tensors],
                                                          digits: tuple[ClientData, ClientData]) -> None:
    _, test = digits
    result = attack_success_rate(SPEC, models["backdoored"], test, PROBE)
    assert result.asr_ppm >= 800_000 and result.base_rate_ppm <= 50_000
    # canary accuracy alone would not catch it: that is why the probe exists
    assert canary_accuracy(SPEC, models["backdoored"], test).accuracy_ppm >= 850_000
    # a trigger in another corner is not the one it learned
    other = TriggerProbe(target_label=0, corner="top-left")
    assert attack_success_rate(SPEC, models["backdoored"], test, other).asr_ppm <= 200_000


# ----------------------------------------------------------------------------- the service on an in-process chain

class ChainRPC:
    """What the evaluator and Submitter use of CometRPC, served by an in-process Chain (one tx per block)."""

    url = "http://127.0.0.1:9"  # nothing listens: the event subscription fails and the service polls

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.executed: dict[str, dict[str, Any]] = {}

    def status(self) -> dict[str, Any]:
        return {"node_info": {"network": CHAIN}, "sync_info": {"latest_block_height": str(self.chain.height)}}

    def height(self) -> int:
        return self.chain.height

    def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> AbciQueryResult:
        r = self.chain.sm.query(path, data, prove)
        return AbciQueryResult(code=r.code, log=r.log, key=r.key, value=r.value, proof=r.proof, height=r.height)

    def broadcast_tx_sync(self, tx: bytes) -> dict[str, Any]:
        check = self.chain.sm.check_tx(tx)
        if check.code != 0:
            return {"code": check.code, "log": check.log}
        (result,) = self.chain.block(tx)
        self.executed[tx_hash(tx)] = {"height": str(self.chain.height), "tx_result": {
            "code": result.code, "log": result.log,
            "events": [{"type": e.type, "attributes": [{"key": k, "value": v} for k, v in e.attributes]}
                       for e in result.events]}}
        return {"code": 0}

    def tx(self, hash_: str) -> dict[str, Any] | None:
        return self.executed.get(hash_)


def put_model(store: EmbeddedStore, weights: Tensors) -> dict[str, Any]:
    payload = encode_tensors(weights)
    return {"cid": store.put(payload), "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}


class Deployment:
    """A chain whose task's versions are real models in a real (embedded) content store."""

    def __init__(self, chain: Chain, store: EmbeddedStore, initial: Tensors) -> None:
        self.chain, self.store = chain, store
        self.owner, self.agg, self.trainer = Signer(10), Signer(11), Signer(20)
        self.eval_signers = [Signer(40), Signer(41)]
        chain.ok(self.owner.admit("validator-admin"), self.agg.admit("aggregator"), self.trainer.admit("trainer"),
                 *[e.admit("evaluator") for e in self.eval_signers])
        chain.ok(self.owner.tx("create_task", {
            "task_id": TASK, "model_spec": SPEC, "round_size": 1, "min_contributions": 1, "deadline_blocks": 30,
            "aggregator": self.agg.hex, "initial_model": put_model(store, initial), "privacy": POLICY}))
        self.rpc = ChainRPC(chain)

    def propose(self, ref: dict[str, Any]) -> int:
        rnd = self.query(f"/task/{TASK}")["current_round"] + 1
        self.chain.ok(self.agg.tx("open_round", {"task_id": TASK, "round": rnd}))
        base = self.query(f"/round/{TASK}/{rnd}")["base_version"]
        self.chain.ok(self.trainer.tx("commit_contribution", {
            "task_id": TASK, "round": rnd, "base_version": base, "num_examples": 10, "dp": DP,
            **model_ref(f"u{rnd}")}))
        self.chain.ok(self.agg.tx("close_round", {"task_id": TASK, "round": rnd}))
        (res,) = self.chain.ok(self.agg.tx("propose_version", {
            "task_id": TASK, "round": rnd, **ref, "contributors": [self.trainer.hex]}))
        return int(dict(res.events[0].attributes)["version"])

    def query(self, path: str) -> Any:
        res = self.chain.sm.query(path, b"", False)
        assert res.code == 0, res.log
        return json.loads(res.value)

    def evaluator(self, signer: Signer, canary: ClientData, probe: TriggerProbe | None = PROBE,
                  scan: bool = False) -> Evaluator:
        submitter = Submitter(self.rpc, Key(f"eval{signer.hex[:4]}", signer.key), chain_id=CHAIN)  # type: ignore[arg-type]
        return Evaluator(submitter, self.store, TASK, canary, probe, scan)


def halves(test: ClientData) -> list[ClientData]:
    """Two disjoint canary sets: each evaluator measures on its own data."""
    return [ClientData(X=np.ascontiguousarray(test.X[i::2]), y=np.ascontiguousarray(test.y[i::2])) for i in (0, 1)]


def test_evaluators_promote_clean_and_quarantine_backdoored_versions(
        chain: Chain, tmp_path: Path, models: dict[str, Tensors], digits: tuple[ClientData, ClientData]) -> None:
    store = EmbeddedStore(tmp_path / "store")
    dep = Deployment(chain, store, models["initial"])
    v_clean = dep.propose(put_model(store, models["clean"]))
    v_bad = dep.propose(put_model(store, models["backdoored"]))
    garbage = b"not a model at all"
    v_junk = dep.propose({"cid": store.put(garbage), "sha256": hashlib.sha256(garbage).hexdigest(),
                          "size": len(garbage)})
    evaluators = [dep.evaluator(s, c) for s, c in zip(dep.eval_signers, halves(digits[1]), strict=True)]
    first, second = evaluators
    first.check_role()
    assert [v["version"] for v in first.pending()] == [v_clean, v_bad, v_junk]
    # one evaluator alone is below the default quorum (two evaluators of initial reputation)
    assert first.step() == Step(Action.ATTESTED, ANY, version=v_clean)
    assert dep.query(f"/version/{TASK}/{v_clean}")["status"] == "proposed"
    for ev in evaluators:
        while ev.step().action is not Action.IDLE:
            pass
    assert [dep.query(f"/version/{TASK}/{v}")["status"] for v in (v_clean, v_bad, v_junk)] == [
        "promoted", "quarantined", "quarantined"]
    assert dep.query(f"/version/{TASK}/{v_bad}")["decision"]["reasons"] == ["backdoor_asr_above_max"]
    assert dep.query(f"/lifecycle/{TASK}")["last_good"] == v_clean
    # what went on chain is the sha256 of the stored metrics JSON, and that JSON holds the measurements
    for ev in evaluators:
        for evaluation in ev.evaluations:
            raw = store.get(evaluation.metrics_cid, evaluation.metrics_sha256)
            assert raw == metrics_bytes(evaluation.metrics)
            atts = dep.query(f"/attestations/{TASK}/{evaluation.version}")
            mine = [a for a in atts if a["signer"] == ev.submitter.key.public_hex]
            assert [a["metrics_sha256"] for a in mine] == [evaluation.metrics_sha256]
            metrics = json.loads(raw)
            assert metrics["backdoor_asr_ppm"] == evaluation.backdoor_asr_ppm
    junk = [e for e in first.evaluations if e.version == v_junk][0]
    assert junk.canary_accuracy_ppm == 0 and junk.backdoor_asr_ppm == 1_000_000 and "error" in junk.metrics
    bad = [e for e in first.evaluations if e.version == v_bad][0]
    assert bad.metrics["backdoor"]["asr_ppm"] >= 800_000 and bad.metrics["canary"]["accuracy_ppm"] >= 850_000
    # restart safety: a fresh process with the same key finds nothing left to do, from chain state alone
    again = dep.evaluator(dep.eval_signers[0], halves(digits[1])[0])
    assert again.pending() == [] and again.step().action is Action.IDLE


def test_evaluator_run_follows_new_versions_and_stops(
        chain: Chain, tmp_path: Path, models: dict[str, Tensors], digits: tuple[ClientData, ClientData]) -> None:
    store = EmbeddedStore(tmp_path / "store")
    dep = Deployment(chain, store, models["initial"])
    version = dep.propose(put_model(store, models["clean"]))
    ev = dep.evaluator(dep.eval_signers[0], digits[1])
    steps: list[Step] = []
    asyncio.run(ev.run(poll_s=0.05, on_step=steps.append, until=lambda: bool(ev.evaluations)))
    assert steps[-1].action is Action.ATTESTED and steps[-1].version == version
    assert [a["evaluator"] for a in dep.query(f"/attestations/{TASK}/{version}")] == [ev.did()]


def test_evaluator_refuses_keys_without_the_role_and_skips_decided_versions(
        chain: Chain, tmp_path: Path, models: dict[str, Tensors], digits: tuple[ClientData, ClientData]) -> None:
    store = EmbeddedStore(tmp_path / "store")
    dep = Deployment(chain, store, models["initial"])
    impostor = dep.evaluator(dep.trainer, digits[1])
    with pytest.raises(ClientError, match="not as an evaluator"):
        impostor.check_role()
    with pytest.raises(ClientError, match="not an enrolled member"):
        dep.evaluator(Signer(77), digits[1]).check_role()
    # a version decided between reading the chain and attesting is skipped, not an error
    version = dep.propose(put_model(store, models["clean"]))
    ev = dep.evaluator(dep.eval_signers[0], digits[1])
    pending = ev.pending()
    body = {"task_id": TASK, "version": version, "metrics_sha256": "00" * 32, "canary_accuracy_ppm": 900_000,
            "backdoor_asr_ppm": 0}
    third, fourth = Signer(42), Signer(43)
    chain.ok(third.admit("evaluator"), fourth.admit("evaluator"))
    chain.ok(third.tx("attest_version", body), fourth.tx("attest_version", body))
    ev.pending = lambda: pending  # type: ignore[method-assign]  # the stale view it read before
    assert ev.step() == Step(Action.SKIPPED, f"skipped version {version}: version {version} of {TASK!r} is promoted; "
                                             "only a proposed version can be attested", version=version)


def test_evaluators_that_know_no_trigger_still_quarantine_the_backdoor(
        chain: Chain, tmp_path: Path, models: dict[str, Tensors], digits: tuple[ClientData, ClientData]) -> None:
    # No probe at all: only the trigger-agnostic scan (node/backdoor_scan.py) can see the backdoor.
    store = EmbeddedStore(tmp_path / "store")
    dep = Deployment(chain, store, models["initial"])
    v_clean = dep.propose(put_model(store, models["clean"]))
    v_bad = dep.propose(put_model(store, models["backdoored"]))
    evaluators = [dep.evaluator(s, c, probe=None, scan=True)
                  for s, c in zip(dep.eval_signers, halves(digits[1]), strict=True)]
    for ev in evaluators:
        while ev.step().action is not Action.IDLE:
            pass
    assert [dep.query(f"/version/{TASK}/{v}")["status"] for v in (v_clean, v_bad)] == ["promoted", "quarantined"]
    assert dep.query(f"/version/{TASK}/{v_bad}")["decision"]["reasons"] == ["backdoor_asr_above_max"]
    assert all(e.metrics["scan"]["kind"] == "neural-cleanse" for ev in evaluators for e in ev.evaluations)
