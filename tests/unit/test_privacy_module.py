"""Privacy budgets on chain: each contribution's declared mechanism is debited; overspending is refused."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.abci_app.accountant import ZERO_RDP, Mechanism, charge
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code
from fedledger.abci_app.store import CommittedStore
from tests.support import Chain, Signer, model_ref

TASK = "dp-task"
MECH = {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 10, "clip_norm": "1"}  # ε ≈ 3.55 at δ=1e-5


def setup(chain: Chain, epsilon: str, org_epsilon: str | None = None, round_size: int = 10, n_trainers: int = 3
          ) -> tuple[Signer, list[Signer]]:
    agg = Signer(50)
    trainers = [Signer(60 + i) for i in range(n_trainers)]
    chain.ok(agg.admit("aggregator"), *[t.admit("trainer") for t in trainers])
    chain.ok(agg.tx("create_task", {
        "task_id": TASK, "model_spec": "m", "round_size": round_size, "min_contributions": 1,
        "deadline_blocks": 100, "aggregator": agg.hex, "initial_model": model_ref("v0"),
        "privacy": {"epsilon": epsilon, "delta": "1e-5", "org_epsilon": org_epsilon}}))
    return agg, trainers


def commit(t: Signer, number: int, mech: dict[str, Any] = MECH) -> bytes:
    return t.tx("commit_contribution", {"task_id": TASK, "round": number, "base_version": 0, "num_examples": 5,
                                        "dp": mech, **model_ref(f"{t.hex}{number}")})


def budget(chain: Chain, t: Signer) -> Any:
    res = chain.sm.query(f"/budget/{TASK}/{did_from_private_key(t.key)}", b"", False)
    assert res.code == 0, res.log
    return json.loads(res.value)


def test_debit_matches_the_accountant_and_composes_across_rounds() -> None:
    chain = Chain(CommittedStore(":memory:"))
    agg, (t,) = setup(chain, epsilon="10", round_size=1, n_trainers=1)
    mech = Mechanism.parse({k: v for k, v in MECH.items() if k != "clip_norm"})
    first = charge(ZERO_RDP, mech, "1e-5")
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    chain.ok(commit(t, 1))
    b = budget(chain, t)
    assert b["epsilon_spent_micro"] == first.epsilon_micro  # exactly what a client plans with the same module
    assert b["epsilon_remaining_micro"] == 10_000_000 - first.epsilon_micro
    chain.ok(agg.tx("close_round", {"task_id": TASK, "round": 1}))
    chain.ok(agg.tx("fail_round", {"task_id": TASK, "round": 1, "reason": "test"}))
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 2}))
    second = charge(first.rdp, mech, "1e-5")  # composition, not addition of epsilons
    assert second.epsilon_micro < 2 * first.epsilon_micro
    if second.epsilon_micro <= 10_000_000:
        chain.ok(commit(t, 2))
        assert budget(chain, t)["epsilon_spent_micro"] == second.epsilon_micro
    else:
        assert [r.code for r in chain.block(commit(t, 2))] == [Code.BUDGET_EXCEEDED]


def test_overspend_is_refused_with_budget_code() -> None:
    chain = Chain(CommittedStore(":memory:"))
    agg, (t, *_rest) = setup(chain, epsilon="1")
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    res = chain.block(commit(t, 1, dict(MECH, steps=1000)))
    assert [r.code for r in res] == [Code.BUDGET_EXCEEDED]
    assert "over the budget" in res[0].log
    assert budget(chain, t)["epsilon_spent_micro"] == 0
    rnd = json.loads(chain.sm.query(f"/round/{TASK}/1", b"", False).value)
    assert rnd["contributions"] == 0


def test_organization_cap() -> None:
    chain = Chain(CommittedStore(":memory:"))
    agg, (t1, t2, _t3) = setup(chain, epsilon="100", org_epsilon="4")
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    chain.ok(commit(t1, 1))
    res = chain.block(commit(t2, 1))  # same org: the org's composed ε passes its cap
    assert [r.code for r in res] == [Code.BUDGET_EXCEEDED] and "organization" in res[0].log


def test_bad_mechanisms_are_invalid_bodies() -> None:
    chain = Chain(CommittedStore(":memory:"))
    agg, (t, *_rest) = setup(chain, epsilon="10")
    chain.ok(agg.tx("open_round", {"task_id": TASK, "round": 1}))
    for mech in ({"noise_multiplier": "1", "sample_rate": "0.1", "steps": 5},  # no clip_norm
                 dict(MECH, noise_multiplier="1.0"), dict(MECH, sample_rate="2"), dict(MECH, steps=0)):
        assert [r.code for r in chain.block(commit(t, 1, mech))] == [Code.INVALID_BODY], mech


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_budget_never_goes_negative(steps_seq: list[int]) -> None:
    chain = Chain(CommittedStore(":memory:"))
    agg, (t,) = setup(chain, epsilon="4", round_size=1, n_trainers=1)
    for rnd, steps in enumerate(steps_seq, start=1):
        chain.ok(agg.tx("open_round", {"task_id": TASK, "round": rnd}))
        chain.block(commit(t, rnd, dict(MECH, steps=steps)))
        b = budget(chain, t)
        assert 0 <= b["epsilon_spent_micro"] <= b["epsilon_budget_micro"]
        assert b["epsilon_remaining_micro"] >= 0
        status = json.loads(chain.sm.query(f"/round/{TASK}/{rnd}", b"", False).value)
        if status["contributions"]:
            chain.ok(agg.tx("close_round", {"task_id": TASK, "round": rnd}))
            chain.ok(agg.tx("fail_round", {"task_id": TASK, "round": rnd, "reason": "test"}))
        else:
            while chain.height <= status["deadline_height"]:
                chain.block()
            chain.ok(agg.tx("close_round", {"task_id": TASK, "round": rnd}))
