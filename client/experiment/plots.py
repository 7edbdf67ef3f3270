"""PNG plots of a paper run with matplotlib's Agg backend (no display): accuracy, ASR, ε and acceptance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fedledger.client.experiment.common import RunResult
from fedledger.client.experiment.paper import PaperPlan, PaperResults
from fedledger.client.experiment.paper_report import FL_METHODS, METHOD_NAMES, epsilon_after, mean_sd

__all__ = ["write_plots"]


def _curve(runs: Sequence[RunResult], attr: str) -> tuple[np.ndarray, np.ndarray]:
    curves = [getattr(r, attr) for r in runs if getattr(r, attr)]
    length = min(len(c) for c in curves)
    stack = np.array([c[:length] for c in curves], dtype=np.float64)
    sd = stack.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(length)
    return stack.mean(axis=0), sd


def _save(fig: Any, path: Path) -> Path:
    """Lay out, write at 110 dpi and close a figure; returns its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(res: PaperResults, plan: PaperPlan, out_dir: Path) -> list[Path]:
    """accuracy_vs_round.png, asr_vs_fraction.png, epsilon_vs_round.png, acceptance.png in out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    attacks = list(plan.main.attacks)
    cols = min(5, len(attacks))
    rows = -(-len(attacks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(attacks):]:
        ax.set_visible(False)
    for ax, attack in zip(axes.flat, attacks, strict=False):
        for method in plan.main.methods:
            runs = [r for r in res.main if r.method == method and r.attack == attack]
            if method == "centralized" and attack != "none":
                runs = [r for r in res.main if r.method == method]
            if not runs:
                continue
            mean, sd = _curve(runs, "accuracy_curve")
            x = np.arange(1, len(mean) + 1)
            ax.plot(x, mean, label=METHOD_NAMES[method], linestyle="--" if method == "centralized" else "-")
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.15)
        ax.set_title(attack if attack != "none" else "benign")
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("test accuracy")
    axes.flat[len(attacks) - 1].legend(fontsize=7, loc="lower right")
    paths.append(_save(fig, out_dir / "accuracy_vs_round.png"))

    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    fractions = sorted(res.sweep)
    for method in FL_METHODS:
        xs, ms, sds = [], [], []
        for f in fractions:
            st = mean_sd([r.backdoor_asr for r in res.sweep[f] if r.method == method])
            if st is not None:
                xs.append(f)
                ms.append(st[0])
                sds.append(st[1])
        if xs:
            ax.errorbar(xs, ms, yerr=sds, marker="o", capsize=3, label=METHOD_NAMES[method])
    ax.axhline(0.03, color="grey", linestyle=":", label="goal 3%")
    ax.set_xlabel("Byzantine fraction (backdoor)")
    ax.set_ylabel("backdoor ASR")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir / "asr_vs_fraction.png"))

    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for method in ("fedavg_dp_secagg", "fedledger"):
        runs = [r for r in res.main if r.method == method and r.attack == "none"]
        if runs:
            mean, _ = _curve(runs, "epsilon_curve")
            ax.plot(np.arange(1, len(mean) + 1), mean, marker=".", label=f"{METHOD_NAMES[method]} (measured)")
    low = [r for r in res.privacy if r.method == "fedledger" and r.attack == "none"]
    if low and plan.privacy is not None:
        mean, _ = _curve(low, "epsilon_curve")
        ax.plot(np.arange(1, len(mean) + 1), mean, label=f"FedLedger, σ {plan.privacy.noise_multiplier} "
                f"q {plan.privacy.sample_rate} {plan.privacy.dp_steps} step (measured)")
    mechanism = {"noise_multiplier": plan.main.noise_multiplier, "sample_rate": plan.main.sample_rate,
                 "steps": plan.main.dp_steps}
    horizon = list(range(1, plan.epsilon_rounds + 1, max(1, plan.epsilon_rounds // 25)))
    ax.plot(horizon, [epsilon_after(mechanism, n, plan.main.delta) for n in horizon], linestyle="--", color="grey",
            label="accountant, same mechanism")
    ax.axhline(4.7, color="red", linestyle=":", label="goal ε ≤ 4.7 at 50 rounds")
    ax.set_xlabel("round")
    ax.set_ylabel(f"largest ε spent (δ = {plan.main.delta})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir / "epsilon_vs_round.png"))

    fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(attacks)), 3.4))
    attacked = [a for a in attacks if a != "none"]
    x = np.arange(len(attacked))
    for k, (attr, label) in enumerate((("benign_acceptance", "honest updates accepted"),
                                       ("byzantine_acceptance", "Byzantine updates accepted"))):
        vals = []
        for attack in attacked:
            st = mean_sd([getattr(r, attr) for r in res.main if r.method == "fedledger" and r.attack == attack])
            vals.append(st[0] if st is not None else np.nan)
        ax.bar(x + (k - 0.5) * 0.38, vals, width=0.38, label=label)
    ax.set_xticks(x, attacked, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share (FedLedger)")
    ax.set_title(f"acceptance under attack ({round(plan.main.byzantine_fraction * 100)}% Byzantine)")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir / "acceptance.png"))
    return paths
