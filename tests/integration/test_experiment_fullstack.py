"""The evaluation harness's two execution modes give the same model for the same seeded config.

The full-stack mode runs FedLedger on a real 4-validator CometBFT localnet with the Kubo store,
the aggregator and evaluator services and real SecAgg+ clients; the fast mode runs the chain's
modules in-process. Block hashes differ between the two chains, so the configs here are ones
whose outcome cannot depend on them (every trainer selected each round; one SecAgg group, or
none) and the test asserts bit equality of the final model, not closeness:
- plaintext median over 5 trainers, one of them sign-flipping, through the CLI attached to the
  running net (`fedledger experiment run --mode localnet --home`);
- one SecAgg group of 4 with a dropout in each round, whose mask the real protocol must remove.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fedledger.apps.experiment.config import ExperimentConfig, parse_config
from fedledger.apps.experiment.datasets import load_federated
from fedledger.apps.experiment.fast import run_one
from fedledger.apps.experiment.fullstack import Localnet
from tests.integration.conftest import run_fedledger
from tests.support import use_pinned_cometbft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

_BASE = {"dataset": "digits", "rounds": 2, "methods": ["fedledger"], "lr": 0.3, "noise_multiplier": "1",
         "sample_rate": "0.3", "clip_norm": "1.0", "dp_steps": 5, "epsilon_budget": "1000"}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Localnet]:
    restore = use_pinned_cometbft()
    try:
        with Localnet(tmp_path_factory.mktemp("experiment") / "net", store="kubo") as localnet:
            yield localnet
    finally:
        restore()


def _fast(cfg: ExperimentConfig, attack: str, seed: int) -> dict[str, object]:
    result = run_one(cfg, load_federated(cfg.dataset, cfg.clients, cfg.alpha, seed), "fedledger", attack, seed)
    return result.row()


def test_plaintext_robust_round_through_the_cli_matches_the_fast_mode(net: Localnet, tmp_path: Path) -> None:
    config = tmp_path / "plain.toml"
    config.write_text("\n".join([*(f"{k} = {v!r}".replace("'", '"') for k, v in _BASE.items()),
                                 'name = "plain"', "clients = 5", "round_size = 5", "seeds = [3]",
                                 'attacks = ["sign_flip"]', "byzantine_fraction = 0.2", "attack_scale = 4.0",
                                 "group_size = 1", 'rule = "median"', "byzantine = 1"]) + "\n")
    out = tmp_path / "out"
    res = run_fedledger(["experiment", "run", str(config), "--mode", "localnet", "--home", str(net.home),
                         "--output", str(out)], timeout=400)
    assert res.rc == 0, res.describe()
    assert "using the running localnet" in res.stdout + res.stderr
    with (out / "runs.csv").open() as fh:
        full = next(csv.DictReader(fh))
    cfg = parse_config({**_BASE, "name": "plain", "clients": 5, "round_size": 5, "seeds": [3],
                        "attacks": ["sign_flip"], "byzantine_fraction": 0.2, "attack_scale": 4.0, "group_size": 1,
                        "rule": "median", "byzantine": 1})
    fast = _fast(cfg, "sign_flip", 3)
    assert full["model_sha256"] == fast["model_sha256"]
    assert full["accuracy_curve"] == fast["accuracy_curve"]
    assert float(full["epsilon"]) == fast["epsilon"]
    # Both chains record the same verdicts (non-IID data: the flipped update is trimmed by the
    # median, not flagged by the cosine guard, so every submission counts as accepted).
    assert float(full["byzantine_acceptance"]) == fast["byzantine_acceptance"]
    assert float(full["benign_acceptance"]) == fast["benign_acceptance"] == 1.0
    assert 0 < float(full["commit_ms"]) < 30_000  # a real broadcast-to-block latency, not the in-process figure


def test_secure_round_with_dropouts_matches_the_fast_mode(net: Localnet) -> None:
    cfg = parse_config({**_BASE, "name": "secure", "clients": 4, "round_size": 4, "seeds": [6], "attacks": ["none"],
                        "byzantine_fraction": 0.0, "group_size": 4, "rule": "fedavg", "byzantine": 0,
                        "dropout": 0.3, "secagg_clip": "0.5"})
    # Seed 6 drops client 0 in round 1 and client 1 in round 2, after they shared their keys.
    data = load_federated(cfg.dataset, cfg.clients, cfg.alpha, 6)
    full = run_one(cfg, data, "fedledger", "none", 6, net)
    fast = run_one(cfg, data, "fedledger", "none", 6)
    assert full.successful_rounds == fast.successful_rounds == 1.0
    assert full.model_sha256 == fast.model_sha256
    assert full.accuracy_curve == fast.accuracy_curve
    assert full.epsilon == fast.epsilon
    # Without the dropouts the model differs: the equality above is not a coincidence of no-ops.
    whole = run_one(replace(cfg, dropout=0.0), data, "fedledger", "none", 6)
    assert whole.model_sha256 != fast.model_sha256
