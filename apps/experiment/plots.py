"""PNG plots of a paper run with matplotlib's Agg backend (no display): accuracy, reputation, ε and acceptance.

- accuracy_vs_round.png: test accuracy per round of every method, benign and under one attack (main data set);
- reputation_vs_round.png: FedLedger's mean reputation of honest vs Byzantine trainers per round, one
  panel per attack: how fast reputation separates the attackers from the honest clients;
- epsilon_vs_round.png: the largest ε any client has spent, per round, for the private methods;
- acceptance.png: valid vs Byzantine update acceptance per attack, FedLedger beside robust_plain.
Curves are means over seeds with a ±sd band.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.apps.experiment.common import RunResult
from fedledger.apps.experiment.paper import PaperPlan, PaperResults
from fedledger.apps.experiment.paper_stats import METHOD_NAMES, runs_of
from fedledger.apps.experiment.report import mean_sd

__all__ = ["write_plots"]

Curve = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
# The attack shown beside the benign accuracy curves: the first of these the plan runs.
SHOWN_ATTACKS = ("backdoor", "scaling", "sign_flip")


def _curve(runs: Sequence[RunResult], attr: str) -> Curve | None:
    """Mean and sd over the runs' curves, cut to the shortest; None when no run has the curve."""
    curves: list[list[float]] = [getattr(r, attr) for r in runs if getattr(r, attr)]
    if not curves:
        return None
    length = min(len(c) for c in curves)
    stack = np.array([c[:length] for c in curves], dtype=np.float64)
    sd = stack.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
    return stack.mean(axis=0), sd


def _band(ax: Any, curve: Curve, label: str, **style: Any) -> None:
    mean, sd = curve
    x = np.arange(1, len(mean) + 1)
    line = ax.plot(x, mean, label=label, **style)[0]
    ax.fill_between(x, mean - sd, mean + sd, alpha=0.15, color=line.get_color())


def _save(fig: Any, path: Path) -> Path:
    """Lay out, write at 110 dpi and close a figure; returns its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _accuracy(plt: Any, runs: Sequence[RunResult], methods: Sequence[str], attacks: Sequence[str],
              dataset: str, path: Path) -> Path:
    shown = ["none", *[a for a in SHOWN_ATTACKS if a in attacks][:1]]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.6 * len(shown), 3.6), sharey=True, squeeze=False)
    for ax, attack in zip(axes[0], shown, strict=True):
        for method in methods:
            # The centralized bound trains on clean data once per seed: the same curve in every panel.
            group = runs_of(runs, method, "none" if method == "centralized" else attack)
            if (curve := _curve(group, "accuracy_curve")) is not None:
                _band(ax, curve, METHOD_NAMES.get(method, method),
                      linestyle="--" if method == "centralized" else "-")
        ax.set_title(f"{dataset}, {'benign' if attack == 'none' else attack}")
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def _reputation(plt: Any, runs: Sequence[RunResult], attacks: Sequence[str], dataset: str, path: Path) -> Path:
    attacked = [a for a in attacks if a != "none"] or ["none"]
    cols = min(5, len(attacked))
    rows = -(-len(attacked) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.9 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(attacked):]:
        ax.set_visible(False)
    for ax, attack in zip(axes.flat, attacked, strict=False):
        group = runs_of(runs, "fedledger", attack)
        for attr, label, color in (("reputation_honest_curve", "honest", "tab:blue"),
                                   ("reputation_byzantine_curve", "Byzantine", "tab:red")):
            if (curve := _curve(group, attr)) is not None:
                _band(ax, curve, label, color=color)
        if not group or not any(r.reputation_honest_curve for r in group):
            ax.text(0.5, 0.5, "no reputation curve", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        ax.set_title(attack, fontsize=9)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("mean reputation")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"FedLedger reputation, honest vs Byzantine trainers ({dataset})", fontsize=10)
    return _save(fig, path)


def _epsilon(plt: Any, res: PaperResults, plan: PaperPlan, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    for cfg in plan.main:
        for method in ("fedavg_dp_secagg", "fedledger"):
            curve = _curve(runs_of(res.main.get(cfg.dataset, []), method, "none"), "epsilon_curve")
            if curve is not None:
                _band(ax, curve, f"{METHOD_NAMES[method]}, {cfg.dataset}", marker=".")
    budget = float(plan.main[0].epsilon_budget)
    ax.axhline(budget, color="red", linestyle=":", label=f"budget ε = {budget:g}")
    ax.set_xlabel("round")
    ax.set_ylabel(f"largest ε spent (δ = {plan.main[0].delta})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _acceptance(plt: Any, runs: Sequence[RunResult], attacks: Sequence[str], dataset: str, path: Path) -> Path:
    attacked = [a for a in attacks if a != "none"]
    bars = [(m, attr, f"{METHOD_NAMES[m]}: {who}") for m in ("fedledger", "robust_plain")
            for attr, who in (("benign_acceptance", "valid"), ("byzantine_acceptance", "Byzantine"))]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(attacked)), 3.6))
    x = np.arange(len(attacked))
    width = 0.8 / len(bars)
    for k, (method, attr, label) in enumerate(bars):
        vals = []
        for attack in attacked:
            st = mean_sd([getattr(r, attr) for r in runs_of(runs, method, attack)])
            vals.append(st[0] if st is not None else np.nan)
        ax.bar(x + (k - (len(bars) - 1) / 2) * width, vals, width=width, label=label)
    ax.set_xticks(x, attacked, rotation=30, ha="right")
    # Headroom above 1.0 holds the legend, so it never covers a bar.
    ax.set_ylim(0, 1.35)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("share of updates accepted")
    ax.set_title(f"update acceptance under attack ({dataset})")
    ax.legend(fontsize=7, ncol=2, loc="upper center")
    return _save(fig, path)


def write_plots(res: PaperResults, plan: PaperPlan, out_dir: Path) -> list[Path]:
    """accuracy_vs_round.png, reputation_vs_round.png, epsilon_vs_round.png and acceptance.png in out_dir.

    The per-data-set plots use the plan's first main config (digits in the paper plan).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = plan.main[0]
    runs = res.main.get(cfg.dataset, [])
    return [_accuracy(plt, runs, cfg.methods, cfg.attacks, cfg.dataset, out_dir / "accuracy_vs_round.png"),
            _reputation(plt, runs, cfg.attacks, cfg.dataset, out_dir / "reputation_vs_round.png"),
            _epsilon(plt, res, plan, out_dir / "epsilon_vs_round.png"),
            _acceptance(plt, runs, cfg.attacks, cfg.dataset, out_dir / "acceptance.png")]
