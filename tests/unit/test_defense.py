"""FedLedger's defense end to end in the fast mode: attribution, no stalls, churn recovery, trigger independence.

Each test runs the real in-process chain and SecAgg on a small federation (200 emulated clients,
40 selected per round), so the properties the paper reports at 1,000 clients are checked here in
seconds.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

from fedledger.apps.experiment.common import RunResult
from fedledger.apps.experiment.config import ExperimentConfig, parse_config
from fedledger.apps.experiment.datasets import FederatedData, load_federated
from fedledger.apps.experiment.fast import run_one

BASE = parse_config({
    "dataset": "digits", "clients": 200, "client_examples": 16, "round_size": 40, "rounds": 6, "seeds": [1],
    "alpha": 0.3, "byzantine_fraction": 0.2, "attack_scale": 4.0, "local_epochs": 1, "lr": 0.3,
    "batch_size": 16, "dp_mode": "distributed", "noise_multiplier": "2.5", "clip_norm": "0.5",
    "epsilon_budget": "5", "group_size": 40, "secagg_clip": "2.0", "noise_quorum_pct": 70, "rule": "fedavg",
    "byzantine": 8, "screen": True, "screen_min_cosine": 0.0, "max_regression": 0.1,
    "methods": ["fedledger"], "attacks": ["none"]})


@cache
def _data(clients: int) -> FederatedData:
    return load_federated("digits", clients, 0.3, 1, 16)


def _run(cfg: ExperimentConfig, attack: str, method: str = "fedledger") -> RunResult:
    return run_one(cfg, _data(cfg.clients), method, attack, 1)


def test_a_fixed_attacker_set_is_isolated_within_a_few_rounds() -> None:
    cfg = replace(BASE, rounds=8)
    res = _run(cfg, "sign_flip")
    assert res.byzantine_acceptance is not None and res.byzantine_acceptance <= 0.10
    assert res.benign_acceptance is not None and res.benign_acceptance >= 0.90
    # Screened twice, an attacker's reputation is at the floor; the honest ones only gain.
    assert res.reputation_byzantine_curve[-1] < 0.5 < 1.0 <= res.reputation_honest_curve[-1]
    byz = res.reputation_byzantine_curve
    assert all(later <= earlier for earlier, later in zip(byz, byz[1:], strict=False))  # never rises
    assert res.promoted_rounds >= 0.8


def test_quarantine_leads_to_progress_not_a_stall() -> None:
    # No screen, no DP, a tight regression rule: sign-flipped updates get through and some versions
    # are quarantined; the rounds after them (new trainers, the last good base) still promote and
    # the trusted model still improves.
    cfg = replace(BASE, screen=False, max_regression=0.02, rounds=8)
    res = _run(cfg, "sign_flip", "fedledger_nodp")
    assert res.quarantined >= 1
    assert res.promoted_rounds >= 0.5
    assert res.accuracy > res.accuracy_curve[0]


def test_churn_with_secagg_keeps_every_round() -> None:
    cfg = replace(BASE, availability=0.3, dropout=0.1, rounds=5)
    res = _run(cfg, "none")
    assert res.successful_rounds == 1.0


def test_the_defense_never_reads_the_attacks_trigger() -> None:
    # sign_flip uses no trigger: if anything on FedLedger's side read the backdoor settings, the
    # models would differ; the trigger only changes what the ASR measurement stamps.
    a = _run(replace(BASE, rounds=3), "sign_flip")
    b = _run(replace(BASE, rounds=3, backdoor_trigger="blend", backdoor_target=7, backdoor_location="top-left"),
             "sign_flip")
    assert a.model_sha256 == b.model_sha256
    assert a.backdoor_asr != b.backdoor_asr or a.backdoor_asr is None


def test_a_baseline_broken_by_its_attack_keeps_failing_rounds_instead_of_crashing() -> None:
    # Huge Gaussian updates push plain FedAvg's weights to inf/NaN; nobody can train from such a
    # model, and the suite must report that run, not stop at it.
    res = _run(replace(BASE, rounds=4, attack_scale=1e30), "gaussian", "fedavg")
    assert len(res.accuracy_curve) == 4
    assert res.successful_rounds < 1.0
