"""The paper's goals: each one's measured value and verdict, computed from the runs (no verdict is written by hand).

Every measured value is a mean over seeds (a worst case is the worst of those means, naming the
attack it comes from); "(k/n seeds)" marks a mean some seeds could not produce. A goal whose runs
are missing reads "not measured", never "met".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fedledger.apps.experiment.common import RunResult
from fedledger.apps.experiment.config import ExperimentConfig
from fedledger.apps.experiment.paper import PaperPlan, PaperResults
from fedledger.apps.experiment.paper_stats import Stat, drops_by_seed, runs_of, split_runs, stat, table

__all__ = ["BYZANTINE_ATTACKS", "THRESHOLDS", "Goal", "goals", "goals_table"]

# The goals' thresholds (the verdicts are computed against them, below).
THRESHOLDS = {"drop_pp": 2.0, "asr": 0.03, "promoted": 0.90, "utility": 0.01, "epsilon": 5.0,
              "byzantine_acceptance": 0.10, "valid_acceptance": 0.95, "churn": 0.99, "mia_vulnerable": 0.60,
              "mia_private": 0.55, "robust_margin_pp": 1.0}
# The attacks whose updates the defense must refuse (the others look like honest updates by design).
BYZANTINE_ATTACKS = ("sign_flip", "scaling", "ipm", "gaussian")
ASR_ATTACKS = ("backdoor", "scaling")
PAPER_DATASETS = ("digits", "mnist")  # the main data sets


@dataclass(frozen=True)
class Goal:
    """One goal: what, its target, the measured text and value, and the verdict (None: not measured)."""

    name: str
    target: str
    measured: str
    value: float | None
    met: bool | None

    def cells(self) -> list[str]:
        """The goals table's row."""
        verdict = "not measured" if self.met is None else ("met" if self.met else "**not met**")
        return [self.name, self.target, self.measured, verdict]

    def row(self) -> dict[str, Any]:
        """The goals CSV row."""
        return {"goal": self.name, "target": self.target, "measured": self.measured, "value": self.value,
                "met": self.met}


def _goal(name: str, target: str, st: Stat | None, ok: Callable[[float], bool], digits: int = 3,
          unit: str = "", note: str = "") -> Goal:
    if st is None:
        return Goal(name, target, "not measured", None, None)
    text = f"{st.mean:.{digits}f}{unit}" + (f" ({note})" if note else "")
    if st.n < st.total:
        text += f" ({st.n}/{st.total} seeds)"
    return Goal(name, target, text, st.mean, ok(st.mean))


def _worst(stats: dict[str, Stat | None], highest: bool) -> tuple[str, Stat | None, list[str]]:
    """The attack with the highest (or lowest) mean, its Stat, and the attacks that have no figure."""
    known = {k: s for k, s in stats.items() if s is not None}
    missing = [k for k, s in stats.items() if s is None]
    if not known:
        return "", None, missing
    key = (max if highest else min)(known, key=lambda k: known[k].mean)
    return key, known[key], missing


def _worst_goal(name: str, target: str, stats: dict[str, Stat | None], highest: bool, ok: Callable[[float], bool],
                digits: int = 3, unit: str = "") -> Goal:
    key, st, missing = _worst(stats, highest)
    note = key + (f"; no figure for {', '.join(missing)}" if missing and st is not None else "")
    return _goal(name, target, st, ok, digits, unit, note)


def _field(runs: Sequence[RunResult], method: str, attack: str, attr: str) -> Stat | None:
    return stat([getattr(r, attr) for r in runs_of(runs, method, attack)])


def _mia(runs: Sequence[RunResult], method: str) -> Stat | None:
    """The stronger of the two membership attacks (higher mean AUC)."""
    both = [s for s in (_field(runs, method, "none", "mia_auc"), _field(runs, method, "none", "mia_shadow_auc"))
            if s is not None]
    return max(both, key=lambda s: s.mean, default=None)


def _dataset_goals(cfg: ExperimentConfig, runs: Sequence[RunResult], nodp: Sequence[RunResult]) -> list[Goal]:
    t, d = THRESHOLDS, cfg.dataset
    attacks = [a for a in cfg.attacks if a != "none"]
    drops = {a: stat(drops_by_seed(runs, "fedledger", a)) for a in attacks}
    out = [_worst_goal(f"{d}: worst accuracy drop under attack (FedLedger)", f"≤ {t['drop_pp']:g} pp", drops, True,
                       lambda v: v <= t["drop_pp"], 2, " pp")]
    out += [_goal(f"{d}: `{a}` ASR (FedLedger)", f"≤ {t['asr']:g}", _field(runs, "fedledger", a, "backdoor_asr"),
                  lambda v: v <= t["asr"]) for a in ASR_ATTACKS if a in attacks]
    promoted = {a: _field(runs, "fedledger", a, "promoted_rounds") for a in attacks}
    out.append(_worst_goal(f"{d}: promoted rounds, lowest under any attack (FedLedger)", f"≥ {t['promoted']:g}",
                           promoted, False, lambda v: v >= t["promoted"]))
    out.append(_versus(f"{d}: benign accuracy, FedLedger vs FedAvg + DP + SecAgg",
                       _field(runs, "fedledger", "none", "accuracy"),
                       _field(runs, "fedavg_dp_secagg", "none", "accuracy")))
    out.append(_versus(f"{d}: benign accuracy, FedLedger without DP vs FedAvg",
                       _field(nodp, "fedledger_nodp", "none", "accuracy"), _field(runs, "fedavg", "none", "accuracy")))
    byz_attacks = [a for a in BYZANTINE_ATTACKS if a in attacks]
    if byz_attacks:
        byz = {a: _field(runs, "fedledger", a, "byzantine_acceptance") for a in byz_attacks}
        valid = {a: _field(runs, "fedledger", a, "benign_acceptance") for a in byz_attacks}
        out.append(_worst_goal(f"{d}: Byzantine-update acceptance, highest of {', '.join(byz_attacks)} (FedLedger)",
                               f"≤ {t['byzantine_acceptance']:g}", byz, True, lambda v: v <= t["byzantine_acceptance"]))
        out.append(_worst_goal(f"{d}: valid-update acceptance, lowest under {', '.join(byz_attacks)} (FedLedger)",
                               f"≥ {t['valid_acceptance']:g}", valid, False, lambda v: v >= t["valid_acceptance"]))
    out.append(_robust_goal(cfg, runs))
    return out


def _versus(name: str, ours: Stat | None, base: Stat | None) -> Goal:
    """FedLedger's mean within THRESHOLDS["utility"] below the baseline's (at or above it is met too)."""
    margin = THRESHOLDS["utility"]
    target = f"≥ baseline − {100 * margin:g} pp"
    if ours is None or base is None:
        return Goal(name, target, "not measured", None, None)
    diff = ours.mean - base.mean
    seeds = "" if ours.n == ours.total and base.n == base.total else \
        f" ({ours.n}/{ours.total} and {base.n}/{base.total} seeds)"
    text = f"{ours.mean:.3f} vs {base.mean:.3f} ({100 * diff:+.1f} pp){seeds}"
    return Goal(name, target, text, diff, diff >= -margin)


def _robust_goal(cfg: ExperimentConfig, runs: Sequence[RunResult]) -> Goal:
    """FedLedger's drop at most robust_plain's + 1 pp, attack by attack; the value is how many attacks meet it."""
    margin = THRESHOLDS["robust_margin_pp"]
    name = f"{cfg.dataset}: at least as robust as robust_plain (FedLedger drop ≤ its drop + {margin:g} pp)"
    target = "every attack"
    met, compared, failed = 0, 0, []
    for a in cfg.attacks:
        if a == "none":
            continue
        ours, theirs = stat(drops_by_seed(runs, "fedledger", a)), stat(drops_by_seed(runs, "robust_plain", a))
        if ours is None or theirs is None:
            continue
        compared += 1
        if ours.mean <= theirs.mean + margin:
            met += 1
        else:
            failed.append(a)
    if not compared:
        return Goal(name, target, "not measured", None, None)
    text = f"{met}/{compared} attacks" + (f" (not: {', '.join(failed)})" if failed else "")
    return Goal(name, target, text, float(met), met == compared)


def goals(res: PaperResults, plan: PaperPlan) -> list[Goal]:
    """Every goal of the paper, in the order of the goals table."""
    t = THRESHOLDS
    out: list[Goal] = []
    main_of = {cfg.dataset: res.main.get(cfg.dataset, []) for cfg in plan.main}
    for cfg in plan.main:
        out += _dataset_goals(cfg, main_of[cfg.dataset], res.nodp.get(cfg.dataset, []))
    for name in PAPER_DATASETS:
        if name not in main_of:  # left out with --datasets: say so rather than let the table look complete
            out.append(Goal(f"{name}: the main setting (every method under every attack)", "run", "not run",
                            None, None))
    seeds = min((len(c.seeds) for c in plan.main), default=0)
    out.append(Goal("seeds of the main tables", "≥ 3", str(seeds), float(seeds), seeds >= 3))
    for cfg, runs in zip(plan.triggers, split_runs(res.triggers, plan.triggers), strict=True):
        out.append(_goal(f"unknown trigger `{cfg.backdoor_trigger}` at {cfg.backdoor_location}, target "
                         f"{cfg.backdoor_target}: ASR (FedLedger)", f"≤ {t['asr']:g}",
                         _field(runs, "fedledger", "backdoor", "backdoor_asr"), lambda v: v <= t["asr"]))
    ledger = [r for runs in [*res.main.values(), res.triggers, res.worse, res.churn, res.mia] for r in runs
              if r.method == "fedledger" and r.epsilon is not None]
    eps = max((r.epsilon for r in ledger if r.epsilon is not None), default=None)
    out.append(Goal("largest final ε of any FedLedger run", f"≤ {t['epsilon']:g}",
                    "not measured" if eps is None else f"{eps:.2f} (over {len(ledger)} runs)", eps,
                    None if eps is None else eps <= t["epsilon"]))
    w = plan.worse
    reference = res.main.get(w.dataset, [])
    worse_attacks = [a for a in w.attacks if a != "none"]
    pct = f"{w.byzantine_fraction:.0%} Byzantine, scale {w.attack_scale:g}"
    out.append(_worst_goal(f"worse attackers ({pct}): worst accuracy drop (FedLedger)", f"≤ {t['drop_pp']:g} pp",
                           {a: stat(drops_by_seed(res.worse, "fedledger", a, reference)) for a in worse_attacks},
                           True, lambda v: v <= t["drop_pp"], 2, " pp"))
    asr_attacks = [a for a in ASR_ATTACKS if a in worse_attacks]
    if asr_attacks:
        out.append(_worst_goal(f"worse attackers ({pct}): highest ASR of {', '.join(asr_attacks)} (FedLedger)",
                               f"≤ {t['asr']:g}",
                               {a: _field(res.worse, "fedledger", a, "backdoor_asr") for a in asr_attacks}, True,
                               lambda v: v <= t["asr"]))
    out.append(_goal(f"churn ({plan.churn.availability:.0%} availability, {plan.churn.dropout:.0%} dropout): "
                     "successful rounds (FedLedger)", f"≥ {t['churn']:g}",
                     _field(res.churn, "fedledger", "none", "successful_rounds"), lambda v: v >= t["churn"]))
    out.append(_goal("MIA setting: plain FedAvg is vulnerable (stronger of loss-threshold and shadow AUC)",
                     f"≥ {t['mia_vulnerable']:g}", _mia(res.mia, "fedavg"), lambda v: v >= t["mia_vulnerable"]))
    out.append(_goal("MIA setting: FedLedger resists (stronger of loss-threshold and shadow AUC)",
                     f"≤ {t['mia_private']:g}", _mia(res.mia, "fedledger"), lambda v: v <= t["mia_private"]))
    return out


def goals_table(res: PaperResults, plan: PaperPlan) -> tuple[str, list[dict[str, Any]]]:
    """The goals as a markdown table and as CSV rows."""
    rows = goals(res, plan)
    return table(["goal", "target", "measured (mean over seeds)", "verdict"], [g.cells() for g in rows]), \
        [g.row() for g in rows]
