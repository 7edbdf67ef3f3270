"""Free riders, Sybil identities (counted by the baselines, refused by the chain's cap) and the shadow-model MIA."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fedledger.abci_app.errors import Code
from fedledger.apps.experiment.attacks import attack_updates
from fedledger.apps.experiment.common import ClientUpdate, RunContext, local_updates
from fedledger.apps.experiment.config import ExperimentConfig, ExperimentConfigError, parse_config
from fedledger.apps.experiment.datasets import FederatedData, load_federated
from fedledger.apps.experiment.fast import run_one
from fedledger.apps.experiment.ledger import ATTACKER_ORG, ORG, Ledger, LedgerError
from fedledger.apps.experiment.mia_shadow import shadow_mia_auc
from fedledger.node.aggregation.fedavg import apply_delta
from fedledger.sdk.ml.data import ClientData
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.ml.train import train_local

CFG = ExperimentConfig(dataset="digits", clients=10, round_size=10, rounds=2, seeds=(1,), byzantine_fraction=0.2,
                       attack_scale=4.0, lr=0.3, batch_size=16, noise_multiplier="0.8", secagg_clip="0.1",
                       group_size=2, sybils=3)


@pytest.fixture(scope="module")
def digits() -> FederatedData:
    return load_federated("digits", CFG.clients, CFG.alpha, 1)


def _updates(data: FederatedData, method: str, attack: str) -> tuple[RunContext, list[ClientUpdate]]:
    ctx = RunContext.build(CFG, method, attack, 1, data)
    updates, _ = local_updates(ctx, initial_weights(data.spec, 1), list(range(CFG.clients)), 1)
    return ctx, updates


def test_free_rider_sends_small_noise_and_claims_its_examples(digits: FederatedData) -> None:
    ctx, riders = _updates(digits, "fedavg", "free_rider")
    _, honest = _updates(digits, "fedavg", "none")
    assert len(ctx.byzantine) == 2 and len(riders) == CFG.clients
    benign_norms = [float(np.linalg.norm(honest[i].vector)) for i in range(CFG.clients) if i not in ctx.byzantine]
    for i in range(CFG.clients):
        if i not in ctx.byzantine:  # honest clients are untouched
            assert np.array_equal(riders[i].vector, honest[i].vector)
            continue
        row, own = riders[i].vector, honest[i].vector
        assert riders[i].num_examples == len(digits.clients[i])  # claims its whole shard
        norm = float(np.linalg.norm(row))
        # noise at a tenth (x attack_scale) of the median benign norm, unrelated to the work it skipped
        assert norm == pytest.approx(CFG.attack_scale * 0.1 * float(np.median(benign_norms)), rel=0.05)
        assert abs(float(row @ own)) / (norm * float(np.linalg.norm(own))) < 0.1
    # no benign update to size the noise from: a zero row
    assert not attack_updates("free_rider", [np.ones(4, dtype=np.float32)], [], 1.0, np.random.default_rng(0),
                              1)[0].any()


def test_sybil_rows_are_counted_by_the_baselines_only(digits: FederatedData) -> None:
    ctx, updates = _updates(digits, "fedavg", "sybil")
    _, honest = _updates(digits, "fedavg", "none")
    bad = sorted(ctx.byzantine)
    assert len(updates) == CFG.clients + len(bad) * CFG.sybils
    ids = [u.client for u in updates]
    assert len(set(ids)) == len(ids) and all(i >= CFG.clients for i in ids[CFG.clients:])
    for i in bad:
        forged = updates[i].vector
        assert np.array_equal(forged, (-CFG.attack_scale * honest[i].vector).astype(np.float32))  # sign flip
        copies = [u for u in updates if np.array_equal(u.vector, forged)]
        assert len(copies) == 1 + CFG.sybils and {u.num_examples for u in copies} == {updates[i].num_examples}
    for method in ("fedavg_dp_secagg", "fedledger"):
        _, rows = _updates(digits, method, "sybil")
        assert len(rows) == CFG.clients + (len(bad) * CFG.sybils if method == "fedavg_dp_secagg" else 0)


def test_sybils_weigh_on_the_baselines(digits: FederatedData) -> None:
    plain = {a: run_one(CFG, digits, "fedavg", a, 1) for a in ("sign_flip", "sybil")}
    assert plain["sybil"].model_sha256 != plain["sign_flip"].model_sha256
    assert plain["sybil"].accuracy < plain["sign_flip"].accuracy  # 2 + 6 flipped rows instead of 2
    # No admission control: every Sybil identity joins, none is refused.
    assert (plain["sybil"].sybil_attempts, plain["sybil"].sybil_refused) == (2 * CFG.sybils, 0)
    secure = run_one(CFG, digits, "fedavg_dp_secagg", "sybil", 1)
    # the Sybils' ε ledger entries exist but run the attacker's own mechanism: the largest ε is unchanged
    assert secure.epsilon == run_one(CFG, digits, "fedavg_dp_secagg", "sign_flip", 1).epsilon
    assert secure.successful_rounds == 1.0 and len(secure.accuracy_curve) == CFG.rounds


def test_the_chain_refuses_sybils_with_the_cap_and_admits_the_attackers() -> None:
    ledger = Ledger(b"sybil-test", trainers=5, evaluators=1, byzantine={1, 3})
    try:
        org = ledger.query(f"/org/{ATTACKER_ORG}")
        assert org["enrollment_cap"] == 2 and org["roles"] == ["trainer"]
        for i, trainer in enumerate(ledger.trainers):
            member = ledger.query(f"/whois/{trainer.hex}")
            assert member["status"] == "active"
            assert member["organization"] == (ATTACKER_ORG if i in (1, 3) else ORG)
        assert ledger.attempt_sybils(0) == (0, 0)
        assert ledger.attempt_sybils(3) == (6, 6)
        # The attackers were admitted through the same issuer and credential path, so the cap is what refuses.
        assert [code for _, code in ledger.sybil_attempts] == [Code.ORG_CAP] * 6
        assert len({m.hex for m, _ in ledger.sybil_attempts} | {t.hex for t in ledger.trainers}) == 5 + 6
        for sybil, _ in ledger.sybil_attempts:
            with pytest.raises(LedgerError, match="acts for no enrolled DID"):
                ledger.query(f"/whois/{sybil.hex}")
        with pytest.raises(ValueError, match="n_per_attacker"):
            ledger.attempt_sybils(-1)
    finally:
        ledger.close()
    with pytest.raises(ValueError, match="Byzantine trainer indices"):
        Ledger(b"sybil-test", trainers=2, byzantine={2})


def test_fedledger_run_refuses_every_sybil_before_the_rounds(digits: FederatedData) -> None:
    res = run_one(replace(CFG, rounds=1), digits, "fedledger", "sybil", 1)
    assert res.sybil_attempts == CFG.num_byzantine * CFG.sybils == res.sybil_refused
    assert res.successful_rounds == 1.0
    assert run_one(replace(CFG, rounds=1), digits, "fedledger", "sign_flip", 1).sybil_attempts == 0


def test_sybils_config_field() -> None:
    assert parse_config({"sybils": 0}).sybils == 0
    with pytest.raises(ExperimentConfigError, match="'sybils'"):
        parse_config({"sybils": -1})
    assert "free_rider" in parse_config({"attacks": ["free_rider", "sybil"]}).attacks


def _tiny_members(data: FederatedData, seed: int) -> FederatedData:
    idx = np.sort(np.random.default_rng([seed, 1]).permutation(len(data.pooled))[:60])
    return replace(data, pooled=ClientData(X=np.ascontiguousarray(data.pooled.X[idx]),
                                           y=np.ascontiguousarray(data.pooled.y[idx])))


@pytest.mark.parametrize("seed", [1, 2])
def test_shadow_mia_separates_an_overfit_model_and_not_an_untrained_one(seed: int) -> None:
    data = load_federated("digits", 10, 0.3, seed)
    tiny = _tiny_members(data, seed)
    init = initial_weights(data.spec, seed)
    # 100 epochs on 60 members: near-zero training loss, so members stand out from fresh examples
    overfit = apply_delta(init, train_local(data.spec, init, tiny.pooled, epochs=100, lr=0.1, batch_size=16,
                                            seed=seed).delta)
    leaky = shadow_mia_auc(data.spec, overfit, tiny, seed, epochs=100, lr=0.1, batch_size=16)
    # Over seeds 1-12 this measured 0.69-0.78 (overfit) and 0.46-0.54 (untrained, ~180 vs ~180 examples).
    assert leaky > 0.62
    assert leaky == shadow_mia_auc(data.spec, overfit, tiny, seed, epochs=100, lr=0.1, batch_size=16)
    blind = shadow_mia_auc(data.spec, init, data, seed, epochs=100, lr=0.1, batch_size=16)
    assert 0.4 < blind < 0.6
