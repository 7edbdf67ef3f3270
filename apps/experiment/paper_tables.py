"""The paper's tables, each as markdown and as CSV rows, from the runs of one PaperResults.

Table 1: benign training per data set (FedLedger without DP from the `nodp` runs). Table 2: every
attack × method per data set. Then the unknown triggers, the worse attackers, churn and
membership inference. A cell is a mean ± sd over seeds; "—" is a figure the method does not
produce (the baselines' chain commit, the centralized bound's traffic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fedledger.apps.experiment.common import RunResult
from fedledger.apps.experiment.config import ExperimentConfig
from fedledger.apps.experiment.paper_stats import (
    METHOD_NAMES,
    cell,
    drops_by_seed,
    runs_of,
    stat_fields,
    table,
)

__all__ = ["Metric", "Table", "attack_table", "benign_table", "churn_table", "drop_metric", "mia_table",
           "sybil_line", "trigger_table", "worse_table"]

Values = Callable[[Sequence[RunResult]], list[float | int | None]]


@dataclass(frozen=True)
class Metric:
    """One column: its CSV name, its title, the per-seed values it reads from a group's runs, its digits."""

    key: str
    title: str
    values: Values
    digits: int = 3


@dataclass(frozen=True)
class Table:
    """A table as markdown and as CSV rows (mean, sd and n of every metric, beside the label columns)."""

    markdown: str
    rows: list[dict[str, Any]]


def _field(key: str, title: str, digits: int = 3) -> Metric:
    return Metric(key, title, lambda runs: [getattr(r, key) for r in runs], digits)


def drop_metric(reference: Sequence[RunResult]) -> Metric:
    """Accuracy drop (pp) of a group's runs against the same method's benign run of each seed in `reference`."""
    return Metric("accuracy_drop_pp", "accuracy drop (pp)",
                  lambda runs: list(drops_by_seed(runs, runs[0].method, runs[0].attack, reference)) if runs else [],
                  1)


ACCURACY = _field("accuracy", "accuracy")
MACRO_F1 = _field("macro_f1", "macro-F1")
ASR = _field("backdoor_asr", "backdoor ASR")
VALID = _field("benign_acceptance", "valid-update acceptance")
BYZANTINE = _field("byzantine_acceptance", "Byzantine-update acceptance")
PROMOTED = _field("promoted_rounds", "promoted rounds")
MIA_LOSS = _field("mia_auc", "MIA AUC (loss threshold)")
MIA_SHADOW = _field("mia_shadow_auc", "MIA AUC (shadow models)")
EPSILON = _field("epsilon", "final ε", 2)
SUCCESSFUL = _field("successful_rounds", "successful rounds")
ROUND_S = _field("round_s", "round time (s)", 2)
AGGREGATION = _field("aggregation_ms", "aggregation (ms)", 2)
# The centralized bound sends nothing (its 0.0 is not a payload), so it gets "—" rather than 0.
TRAFFIC = Metric("mb_per_client_round", "MB / client / round",
                 lambda runs: [None if r.method == "centralized" else r.mb_per_client_round for r in runs], 4)


def _build(groups: Sequence[tuple[dict[str, Any], list[str], Sequence[RunResult]]], label_titles: Sequence[str],
           metrics: Sequence[Metric]) -> Table:
    """groups: (CSV labels, displayed label cells, runs) per row; rows without runs are left out."""
    rows, csv_rows = [], []
    for labels, shown, runs in groups:
        if not runs:
            continue
        values = [m.values(runs) for m in metrics]
        rows.append([*shown, *[cell(v, m.digits) for m, v in zip(metrics, values, strict=True)]])
        out: dict[str, Any] = {**labels, "seeds": len(runs)}
        for m, v in zip(metrics, values, strict=True):
            out.update(stat_fields(m.key, v))
        csv_rows.append(out)
    return Table(table([*label_titles, *[m.title for m in metrics]], rows), csv_rows)


def benign_table(cfg: ExperimentConfig, runs: Sequence[RunResult], nodp: Sequence[RunResult]) -> Table:
    """Table 1 for one data set: every method's benign runs, then FedLedger without DP."""
    rtt = _field("rounds_to_target", f"rounds to {cfg.target_accuracy:.0%}", 1)
    methods = [m for m in cfg.methods if m != "fedledger_nodp"] + ["fedledger_nodp"]
    groups = [({"dataset": cfg.dataset, "method": m}, [METHOD_NAMES[m]],
               runs_of(nodp if m == "fedledger_nodp" else runs, m, "none")) for m in methods]
    return _build(groups, ["method"], [ACCURACY, MACRO_F1, rtt, TRAFFIC, AGGREGATION, EPSILON, VALID, PROMOTED])


def attack_table(cfg: ExperimentConfig, runs: Sequence[RunResult]) -> Table:
    """Table 2 for one data set: every attack × method (the drop against that method's own benign runs)."""
    groups = [({"dataset": cfg.dataset, "attack": a, "method": m}, [a, METHOD_NAMES[m]], runs_of(runs, m, a))
              for a in cfg.attacks if a != "none" for m in cfg.methods if m != "centralized"]
    return _build(groups, ["attack", "method"],
                  [ACCURACY, drop_metric(runs), ASR, VALID, BYZANTINE, PROMOTED, MIA_LOSS, MIA_SHADOW])


def sybil_line(runs: Sequence[RunResult]) -> str:
    """What admission control did under the sybil attack (empty when it was not run)."""
    ledger = runs_of(runs, "fedledger", "sybil")
    if not ledger:
        return ""
    tried, refused = sum(r.sybil_attempts for r in ledger), sum(r.sybil_refused for r in ledger)
    text = (f"Sybil admissions (`sybil`): FedLedger's chain refused {refused}/{tried} attempted Sybil enrollments "
            f"over {len(ledger)} seed{'s' if len(ledger) != 1 else ''} (the attackers' organization is at its "
            "enrollment cap).")
    baselines = [r for r in runs if r.attack == "sybil" and r.method != "fedledger"]
    if baselines:
        joined = sum(r.sybil_attempts for r in baselines)
        text += (f" The baselines have no admission control: {joined} Sybil identities joined their "
                 f"{len(baselines)} runs, each repeating its attacker's update.")
    return text


def trigger_table(main: ExperimentConfig, main_runs: Sequence[RunResult], cfgs: Sequence[ExperimentConfig],
                  runs: Sequence[Sequence[RunResult]]) -> Table:
    """The unknown-trigger table: the main backdoor's trigger, then each trigger config's (drops vs main benign)."""
    methods = [m for m in main.methods if m != "centralized"]
    if cfgs:
        wanted = {m for c in cfgs for m in c.methods}
        methods = [m for m in methods if m in wanted] + sorted(wanted - set(methods))
    sets: list[tuple[ExperimentConfig, Sequence[RunResult]]] = []
    if "backdoor" in main.attacks:
        sets.append((main, main_runs))
    sets += list(zip(cfgs, runs, strict=True))
    groups = [({"experiment": c.name, "trigger": c.backdoor_trigger, "location": c.backdoor_location,
                "target": c.backdoor_target, "method": m},
               [f"`{c.backdoor_trigger}`", c.backdoor_location, str(c.backdoor_target), METHOD_NAMES[m]],
               runs_of(rs, m, "backdoor")) for c, rs in sets for m in methods]
    return _build(groups, ["trigger", "location", "target", "method"], [ASR, drop_metric(main_runs), ACCURACY])


def worse_table(cfg: ExperimentConfig, runs: Sequence[RunResult], reference: Sequence[RunResult]) -> Table:
    """The worse-attackers table: every attack × method, the drop against the main config's benign runs."""
    groups = [({"attack": a, "method": m}, [a, METHOD_NAMES[m]], runs_of(runs, m, a))
              for a in cfg.attacks if a != "none" for m in cfg.methods if m != "centralized"]
    return _build(groups, ["attack", "method"], [ACCURACY, drop_metric(reference), ASR, VALID, BYZANTINE, PROMOTED])


def churn_table(cfg: ExperimentConfig, runs: Sequence[RunResult]) -> Table:
    """The churn table: per method, rounds that produced a model, rounds promoted, accuracy, ε, round time."""
    groups = [({"method": m}, [METHOD_NAMES[m]], runs_of(runs, m, "none")) for m in cfg.methods]
    return _build(groups, ["method"], [SUCCESSFUL, PROMOTED, ACCURACY, EPSILON, ROUND_S])


def mia_table(cfg: ExperimentConfig, runs: Sequence[RunResult]) -> Table:
    """The membership-inference table: both attacks' AUC, accuracy and ε per method."""
    groups = [({"method": m}, [METHOD_NAMES[m]], runs_of(runs, m, "none")) for m in cfg.methods]
    return _build(groups, ["method"], [MIA_LOSS, MIA_SHADOW, ACCURACY, EPSILON])
