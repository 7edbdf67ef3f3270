"""`experiment paper` on a tiny plan: tables, CSV and plots are written from the runs, churn is counted, ε projected."""

from __future__ import annotations

import csv
import statistics
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from fedledger.abci_app.accountant import ZERO_RDP, Mechanism, charge
from fedledger.client.experiment.attacks import attack_data
from fedledger.client.experiment.common import RunContext, RunResult, dropped_positions, online_clients
from fedledger.client.experiment.datasets import load_federated
from fedledger.client.experiment.paper import PaperPlan, PaperResults, paper_plan, run_paper
from fedledger.client.experiment.paper_report import accuracy_drops, epsilon_after, mean_sd, write_paper
from fedledger.client.experiment.plots import write_plots
from fedledger.client.experiment.triggers import trigger_for


def _tiny() -> PaperPlan:
    plan = paper_plan(quick=True)
    main = replace(plan.main, rounds=2, seeds=(1, 2), attacks=("none", "backdoor"), methods=("fedavg", "fedledger"))
    other = replace(plan.datasets[0], rounds=2, seeds=(1,), attacks=("none", "label_flip"),
                    methods=("fedavg", "fedledger"))
    return PaperPlan(main=main, sweep=replace(plan.sweep, rounds=2, methods=("fedavg",)), fractions=(0.4,),
                     churn=replace(plan.churn, rounds=2, seeds=(2,), methods=("fedavg", "fedledger")),
                     datasets=(other,), churn_plain=replace(plan.churn_plain, rounds=2, seeds=(2,)),
                     privacy=replace(plan.privacy, rounds=3, seeds=(1,)))


@pytest.fixture(scope="module")
def tiny() -> tuple[PaperPlan, PaperResults]:
    plan = _tiny()
    lines: list[str] = []
    res = run_paper(plan, lines.append)
    assert len(lines) == (len(res.main) + len(res.sweep[0.4]) + len(res.churn) + len(res.datasets["breast_cancer"])
                          + len(res.churn_plain) + len(res.privacy))
    assert plan.fullstack is None and not res.fullstack  # the quick plan never starts a localnet
    return plan, res


def test_paper_writes_tables_csv_and_plots(tiny: tuple[PaperPlan, PaperResults], tmp_path: Path) -> None:
    plan, res = tiny
    plots = write_plots(res, plan, tmp_path / "results")
    written = write_paper(res, plan, tmp_path / "RESULTS.md", tmp_path / "results", "fedledger experiment paper",
                          plots)
    for p in [*written, *plots]:
        assert p.exists() and p.stat().st_size > 0
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    text = (tmp_path / "RESULTS.md").read_text(encoding="utf-8")
    assert text.count("\n## Table ") == 4 and "fedledger experiment paper" in text
    assert "| P2P gossip FL | not measured²" in text and "![acceptance](results/acceptance.png)" in text
    with (tmp_path / "results" / "table1_benign.csv").open(encoding="utf-8") as fh:
        t1 = {row["method"]: row for row in csv.DictReader(fh)}
    accs = [r.accuracy for r in res.main if r.method == "fedledger" and r.attack == "none"]
    assert float(t1["fedledger"]["accuracy_mean"]) == pytest.approx(statistics.mean(accs))
    assert float(t1["fedledger"]["accuracy_sd"]) == pytest.approx(statistics.stdev(accs))
    with (tmp_path / "results" / "runs.csv").open(encoding="utf-8") as fh:
        runs = list(csv.DictReader(fh))
    assert len(runs) == (len(res.main) + len(res.sweep[0.4]) + len(res.churn) + len(res.datasets["breast_cancer"])
                         + len(res.churn_plain) + len(res.privacy))
    assert {r["experiment"] for r in runs} == {"main", "sweep-0.4", "churn", "dataset-breast_cancer", "churn-plain",
                                               "privacy"}
    assert "Table 3b" in text and "FedLedger without SecAgg (g = 1)" in text
    with (tmp_path / "results" / "table3b_epsilon_horizon.csv").open(encoding="utf-8") as fh:
        horizon = {row["method"]: row for row in csv.DictReader(fh)}
    eps = [r.epsilon for r in res.privacy if r.method == "fedledger"]
    assert float(horizon["fedledger"]["epsilon_mean"]) == pytest.approx(eps[0])
    assert eps[0] == pytest.approx(epsilon_after({"noise_multiplier": "4", "sample_rate": "0.5", "steps": 1}, 3,
                                                 plan.privacy.delta), abs=1e-6)
    with (tmp_path / "results" / "table4_datasets.csv").open(encoding="utf-8") as fh:
        t4 = list(csv.DictReader(fh))
    assert {(r["dataset"], r["attack"], r["method"]) for r in t4} == {
        ("breast_cancer", a, m) for a in ("none", "label_flip") for m in ("fedavg", "fedledger")}
    flipped = [r for r in res.datasets["breast_cancer"] if r.method == "fedavg" and r.attack == "label_flip"]
    assert float(next(r for r in t4 if r["attack"] == "label_flip" and r["method"] == "fedavg")["accuracy_mean"]) == \
        pytest.approx(flipped[0].accuracy)


def test_sweep_reuses_main_fraction(tiny: tuple[PaperPlan, PaperResults]) -> None:
    plan, res = tiny
    assert sorted(res.sweep) == [0.2, 0.4]
    assert {r.method for r in res.sweep[0.2]} == {"fedavg"} and all(r.attack == "backdoor" for r in res.sweep[0.2])
    assert all(r.backdoor_asr is not None for r in res.sweep[0.4])


def test_churn_follows_the_availability_draw(tiny: tuple[PaperPlan, PaperResults]) -> None:
    plan, res = tiny
    cfg = plan.churn
    data = load_federated(cfg.dataset, cfg.clients, cfg.alpha, 2)
    ctx = RunContext.build(cfg, "fedavg", "none", 2, data)
    for rnd in (1, 2):
        draw = np.random.default_rng([2, rnd, 9]).random(cfg.clients)
        online = [i for i in range(cfg.clients) if draw[i] < 0.3]
        assert online_clients(ctx, rnd) == online
        drop = np.random.default_rng([2, rnd, 10]).random(cfg.clients)
        assert dropped_positions(ctx, online, rnd) == {p for p, i in enumerate(online) if drop[i] < 0.1}
    for r in res.churn:
        assert r.successful_rounds in (0.0, 0.5, 1.0) and len(r.accuracy_curve) == 2


def test_epsilon_projection_is_the_accountant() -> None:
    mech = {"noise_multiplier": "1", "sample_rate": "0.3", "steps": 10}
    rdp: list[Decimal] = list(ZERO_RDP)
    for _ in range(3):
        c = charge(rdp, Mechanism.parse(mech), "1e-5")
        rdp = list(c.rdp)
    assert epsilon_after(mech, 3, "1e-5") == c.epsilon_micro / 1e6
    assert epsilon_after(mech, 3, "1e-5") < epsilon_after(mech, 6, "1e-5")


def test_accuracy_drop_pairs_by_seed() -> None:
    runs = [RunResult("m", "none", 1, accuracy=0.9), RunResult("m", "none", 2, accuracy=0.8),
            RunResult("m", "alie", 2, accuracy=0.5), RunResult("m", "alie", 1, accuracy=0.85),
            RunResult("m", "alie", 3, accuracy=0.1)]  # seed 3 has no benign twin: left out
    assert accuracy_drops(runs, "m", "alie") == pytest.approx([30.0, 5.0])
    assert mean_sd([1.0, None, 3.0, float("nan")]) == (2.0, pytest.approx(2 ** 0.5), 2)
    assert mean_sd([None]) is None


def test_scaling_attackers_train_on_backdoored_data() -> None:
    data = load_federated("digits", 10, 0.3, 1)
    probe = trigger_for("digits", "pixel_pattern", 0)
    poisoned = attack_data("scaling", data.clients[0], 10, probe, 7)
    assert probe is not None
    assert poisoned.X.tolist() == probe.poison(data.clients[0], 0.5, 7).X.tolist()
    flipped = attack_data("scaling", data.clients[0], 10, None, 7)
    assert (flipped.y == 9 - data.clients[0].y).all()
