"""The input screen: its claims and exact integer rule, the chain enforcing it at the roster, and its refusals."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.node.aggregation.fedavg import AggregationError
from fedledger.node.aggregation.screen import (
    Claim,
    ScreenPolicy,
    claim_for,
    claims_consistent,
    screen_reason,
    unit_reference,
)
from tests.support import DP, POLICY, Chain, Signer, model_ref

TASK = "scr"
SCREEN = {"min_cosine_ppm": 0, "max_norm": "0.5"}
AGGREGATION = {"rule": "fedavg", "byzantine": 0,
               "secure": {"group_size": 6, "clip": "2.0", "stage_blocks": 3}, "screen": SCREEN}


def query(chain: Chain, path: str) -> Any:
    res = chain.sm.query(path, b"", False)
    assert res.code == 0, res.log
    return json.loads(res.value)


# ----------------------------------------------------------------------------- the pure rule

def test_claims_are_the_projection_and_norm_in_ppm() -> None:
    ref = unit_reference(np.array([3.0, 4.0]))
    assert ref.tolist() == [0.6, 0.8]
    claim = claim_for(np.array([0.3, 0.4], dtype=np.float32), ref)
    assert claim == Claim(projection_ppm=500_000, norm_ppm=500_000)
    flipped = claim_for(np.array([-0.3, -0.4], dtype=np.float32), ref)
    assert flipped == Claim(projection_ppm=-500_000, norm_ppm=500_000)
    with pytest.raises(AggregationError, match="no reference direction"):
        unit_reference(np.zeros(3))
    with pytest.raises(AggregationError, match="coordinates"):
        claim_for(np.zeros(3, dtype=np.float32), ref)


def test_screen_rule_is_exact_at_its_edges() -> None:
    policy = ScreenPolicy(min_cosine_ppm=100_000, max_norm_ppm=500_000)
    assert screen_reason(Claim(50_000, 500_000), policy) is None  # cosine exactly 0.1, norm exactly the max
    assert screen_reason(Claim(49_999, 500_000), policy) == "cosine_below_min"
    assert screen_reason(Claim(50_001, 500_001), policy) == "norm_above_max"
    assert screen_reason(Claim(0, 0), policy) == "zero_update"
    assert screen_reason(Claim(-1, 10), policy) == "cosine_below_min"
    assert ScreenPolicy.from_task({"screen": SCREEN}) == ScreenPolicy(0, 500_000)
    assert ScreenPolicy.from_task({"rule": "fedavg"}) is None


def test_group_sum_check_catches_a_lone_liar_and_tolerates_the_noise() -> None:
    rng = np.random.default_rng(0)
    ref = unit_reference(rng.normal(size=50))
    rows = [rng.normal(size=50) * 0.05 for _ in range(8)]
    claims = [claim_for(r, ref) for r in rows]
    total = np.sum(rows, axis=0)
    assert claims_consistent(claims, total, ref, noise_sd=0.0, quant_step=1e-6)
    liar = [*claims[:-1], Claim(claims[-1].projection_ppm + 20_000, claims[-1].norm_ppm)]
    assert not claims_consistent(liar, total, ref, noise_sd=0.0, quant_step=1e-6)
    # The same lie hides within four standard deviations of DP noise on the projected sum.
    assert claims_consistent(liar, total, ref, noise_sd=0.01, quant_step=1e-6)


# ----------------------------------------------------------------------------- the chain enforces it

class World:
    """An owner, an aggregator and six trainers on a screened secure task."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.owner, self.agg = Signer(10), Signer(11)
        self.trainers = sorted((Signer(30 + i) for i in range(6)), key=lambda s: s.hex)
        chain.ok(self.owner.admit("validator-admin"), self.agg.admit("aggregator"),
                 *[t.admit("trainer") for t in self.trainers])
        chain.ok(self.owner.tx("create_task", {
            "task_id": TASK, "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 2,
            "deadline_blocks": 5, "aggregator": self.agg.hex, "initial_model": model_ref("v0"),
            "privacy": POLICY, "aggregation": AGGREGATION}))

    def open(self) -> Any:
        return self.chain.block(self.agg.tx("open_round", {"task_id": TASK, "round": 1,
                                                           "reference": model_ref("reference")}))[0]

    def keys(self, claims: list[dict[str, int] | None]) -> list[Any]:
        bodies = []
        for i, (t, claim) in enumerate(zip(self.trainers, claims, strict=True)):
            body: dict[str, Any] = {"task_id": TASK, "round": 1, "c_pk": f"{2 * i + 1:064x}",
                                    "s_pk": f"{2 * i + 2:064x}"}
            if claim is not None:
                body["screen"] = claim
            bodies.append(t.tx("secagg_keys", body))
        return self.chain.block(*bodies)


def test_screened_trainers_stay_off_the_roster_and_lose_reputation(chain: Chain) -> None:
    w = World(chain)
    assert w.open().code == 0
    assert "reference" in query(chain, f"/round/{TASK}/1")
    good = {"projection_ppm": 100_000, "norm_ppm": 400_000}
    flipped = {"projection_ppm": -100_000, "norm_ppm": 400_000}
    huge = {"projection_ppm": 100_000, "norm_ppm": 2_000_000}
    results = w.keys([good, good, flipped, good, huge, good])
    assert [r.code for r in results] == [0] * 6
    assert chain.block(w.agg.tx("secagg_advance", {"task_id": TASK, "round": 1}))[0].code == 0
    sa = query(chain, f"/round/{TASK}/1")["secagg"]
    t = w.trainers
    assert sa["roster"] == sorted([t[0].hex, t[1].hex, t[3].hex, t[5].hex])
    assert sa["screened"] == {t[2].hex: "cosine_below_min", t[4].hex: "norm_above_max"}
    for i in (2, 4):
        rep = query(chain, f"/reputation/{did_from_private_key(t[i].key)}")
        assert rep["score"] == 500_000  # initial 1.0, minus the robust_flagged weight 0.5
    assert query(chain, f"/reputation/{did_from_private_key(t[0].key)}")["score"] == 1_000_000
    # A screened trainer cannot post shares: it is not on the roster.
    shares = chain.block(t[2].tx("secagg_shares", {"task_id": TASK, "round": 1, **model_ref("s")}))[0]
    assert shares.code == Code.NOT_SELECTED


def test_screened_task_refuses_rounds_and_keys_without_what_the_screen_needs(chain: Chain) -> None:
    w = World(chain)
    no_ref = chain.block(w.agg.tx("open_round", {"task_id": TASK, "round": 1}))[0]
    assert no_ref.code == Code.INVALID_BODY and "reference" in no_ref.log
    assert w.open().code == 0
    missing = w.keys([None] + [{"projection_ppm": 1, "norm_ppm": 1}] * 5)[0]
    assert missing.code == Code.INVALID_BODY and "claims" in missing.log
    t = w.trainers[0]
    for bad, words in ((["x"], "object"), ({"projection_ppm": 5, "norm_ppm": 1}, "exceeds"),
                       ({"projection_ppm": 1}, "missing"), ({"projection_ppm": "1", "norm_ppm": 2}, "projection_ppm")):
        res = chain.block(t.tx("secagg_keys", {"task_id": TASK, "round": 1, "c_pk": "a" * 64, "s_pk": "b" * 64,
                                               "screen": bad}))[0]
        assert res.code == Code.INVALID_BODY and words in res.log, (bad, res.log)


def test_a_screen_needs_secure_aggregation(chain: Chain) -> None:
    w = World(chain)
    res = chain.block(w.owner.tx("create_task", {
        "task_id": "plain", "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 2,
        "deadline_blocks": 5, "aggregator": w.agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY,
        "aggregation": {"rule": "fedavg", "screen": SCREEN}}))[0]
    assert res.code == Code.INVALID_BODY and "needs aggregation.secure" in res.log


def test_a_task_without_privacy_budget_takes_dp_null_and_refuses_a_declared_mechanism(chain: Chain) -> None:
    w = World(chain)
    chain.ok(w.owner.tx("create_task", {
        "task_id": "open", "model_spec": "mlp-digits", "round_size": 6, "min_contributions": 1,
        "deadline_blocks": 5, "aggregator": w.agg.hex, "initial_model": model_ref("v0"), "privacy": None}))
    chain.ok(w.agg.tx("open_round", {"task_id": "open", "round": 1}))
    t = w.trainers
    body = {"task_id": "open", "round": 1, "base_version": 0, "num_examples": 3, **model_ref("u")}
    declared = chain.block(t[0].tx("commit_contribution", {**body, "dp": DP}))[0]
    assert declared.code == Code.INVALID_BODY and "declare dp as null" in declared.log
    assert chain.block(t[1].tx("commit_contribution", {**body, "dp": None}))[0].code == 0
    # And a budgeted task refuses dp: null.
    chain.ok(w.agg.tx("open_round", {"task_id": TASK, "round": 1, "reference": model_ref("r")}))
    res = chain.block(t[2].tx("commit_contribution", {**body, "task_id": TASK, "dp": None}))[0]
    assert res.code in (Code.INVALID_BODY, Code.WRONG_STATE)
