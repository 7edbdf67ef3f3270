"""The smoke experiment run in-process: real metrics, the attack hurts FedAvg, FedLedger's defenses help."""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fedledger.apps.experiment.attacks import alie_z, attack_updates
from fedledger.apps.experiment.common import RunResult
from fedledger.apps.experiment.config import ExperimentConfigError, load_config, parse_config
from fedledger.apps.experiment.datasets import load_federated
from fedledger.apps.experiment.fast import run_experiment, run_one
from fedledger.apps.experiment.metrics import auc, macro_f1, rounds_to_target
from fedledger.apps.experiment.report import summarize

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "smoke.toml"


@pytest.fixture(scope="module")
def smoke() -> list[RunResult]:
    # The shipped smoke config, minus the FedAvg + DP + SecAgg and centralized runs to stay within CI's time.
    cfg = replace(load_config(SMOKE), methods=("fedavg", "fedledger"))
    return run_experiment(cfg)


def _acc(results: list[RunResult], method: str, attack: str) -> list[float]:
    return [r.accuracy for r in results if r.method == method and r.attack == attack]


def test_metrics_come_from_real_runs(smoke: list[RunResult]) -> None:
    assert len(smoke) == 2 * 2 * 2
    for r in smoke:
        assert len(r.accuracy_curve) == 5 and r.accuracy == r.accuracy_curve[-1]
        assert 0.0 <= r.macro_f1 <= 1.0 and 0.0 <= r.mia_auc <= 1.0
        assert r.mb_per_client_round > 0
    benign = [r for r in smoke if r.attack == "none"]
    assert all(r.accuracy > 0.3 for r in benign)  # digits has 10 classes: chance is 0.1
    for method in ("fedavg", "fedledger"):
        a, b = _acc(smoke, method, "none")
        assert a != b  # different seeds, different shards and models
    ledger = [r for r in smoke if r.method == "fedledger"]
    # ε is what the chain debited: DP-SGD σ=0.8, q=0.1, 30 steps per round, 5 rounds, δ=1e-5
    assert all(r.epsilon is not None and 10 < r.epsilon < 30 for r in ledger)
    assert all(r.epsilon_curve == sorted(r.epsilon_curve) for r in ledger)
    assert all(r.commit_ms is not None and r.successful_rounds == 1.0 for r in ledger)
    assert len({r.model_sha256 for r in smoke}) == len(smoke)


def test_sign_flip_hurts_fedavg(smoke: list[RunResult]) -> None:
    clean = statistics.mean(_acc(smoke, "fedavg", "none"))
    attacked = statistics.mean(_acc(smoke, "fedavg", "sign_flip"))
    assert clean - attacked > 0.15


def test_fedledger_loses_less_under_attack_than_fedavg(smoke: list[RunResult]) -> None:
    drop_fedavg = statistics.mean(_acc(smoke, "fedavg", "none")) - statistics.mean(_acc(smoke, "fedavg", "sign_flip"))
    drop_ledger = (statistics.mean(_acc(smoke, "fedledger", "none"))
                   - statistics.mean(_acc(smoke, "fedledger", "sign_flip")))
    assert drop_fedavg - drop_ledger > 0.1


def test_summary_has_mean_and_sd_over_seeds(smoke: list[RunResult]) -> None:
    rows = {(r["attack"], r["method"]): r for r in summarize(smoke)}
    accs = _acc(smoke, "fedavg", "none")
    row = rows[("none", "fedavg")]
    assert row["seeds"] == 2 and row["accuracy_mean"] == pytest.approx(statistics.mean(accs))
    assert row["accuracy_sd"] == pytest.approx(statistics.stdev(accs))
    assert rows[("none", "fedavg")]["epsilon_n"] == 0  # plain FedAvg has no DP: no ε, not a zero


def test_a_run_is_deterministic() -> None:
    cfg = replace(load_config(SMOKE), rounds=2, seeds=(3,))
    data = load_federated(cfg.dataset, cfg.clients, cfg.alpha, 3)
    first, second = run_one(cfg, data, "fedavg", "sign_flip", 3), run_one(cfg, data, "fedavg", "sign_flip", 3)
    assert first.model_sha256 == second.model_sha256 and first.accuracy_curve == second.accuracy_curve


def test_metric_references() -> None:
    # AUC against a brute-force pair count, ties counting one half.
    pos, neg = np.array([0.9, 0.4, 0.4, 0.1]), np.array([0.4, 0.2, 0.0])
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg]
    assert auc(pos, neg) == pytest.approx(sum(pairs) / len(pairs))
    y, p = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp1 fn0 -> 0.8; class 2: tp0 fn1 -> 0
    assert macro_f1(y, p, 3) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert rounds_to_target([0.2, 0.7, 0.9], 0.7) == 2 and rounds_to_target([0.2], 0.5) is None


def test_update_attacks_match_their_definitions() -> None:
    rng = np.random.default_rng(0)
    mine = [np.array([1.0, -2.0], dtype=np.float32)]
    benign = [np.array([1.0, 1.0], dtype=np.float32), np.array([3.0, -1.0], dtype=np.float32)]
    assert attack_updates("sign_flip", mine, benign, 4.0, rng, 3)[0].tolist() == [-4.0, 8.0]
    assert attack_updates("scaling", mine, benign, 2.0, rng, 3)[0].tolist() == [2.0, -4.0]
    assert attack_updates("ipm", mine, benign, 0.5, rng, 3)[0].tolist() == [-1.0, 0.0]
    z = alie_z(3, 1)
    assert attack_updates("alie", mine, benign, 1.0, rng, 3)[0] == pytest.approx([2.0 - z, 0.0 - z])
    assert attack_updates("none", mine, benign, 9.0, rng, 3)[0].tolist() == [1.0, -2.0]


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ExperimentConfigError, match="unknown config fields \\['round'\\]"):
        parse_config({"round": 3})
    with pytest.raises(ExperimentConfigError, match="'methods'"):
        parse_config({"methods": ["fedprox"]})
    with pytest.raises(ExperimentConfigError, match="'round_size'"):
        parse_config({"clients": 4, "round_size": 5})
    with pytest.raises(ExperimentConfigError, match="decimal string"):
        parse_config({"noise_multiplier": 1.0})
