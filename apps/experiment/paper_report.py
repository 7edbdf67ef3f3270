"""The paper's write-up (docs/RESULTS.md): setup from the configs, the tables, the goals, CSV files, plot links.

Every number comes from one PaperResults and every setting from its PaperPlan, so the text cannot
drift from what ran. The tables are built in paper_tables.py and the goals in paper_goals.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedledger.apps.experiment.common import RunResult
from fedledger.apps.experiment.config import ExperimentConfig
from fedledger.apps.experiment.paper import PaperPlan, PaperResults
from fedledger.apps.experiment.paper_goals import BYZANTINE_ATTACKS, goals_table
from fedledger.apps.experiment.paper_stats import DATASET_NAMES, split_runs, write_rows
from fedledger.apps.experiment.paper_tables import (
    Table,
    attack_table,
    benign_table,
    churn_table,
    mia_table,
    sybil_line,
    trigger_table,
    worse_table,
)
from fedledger.apps.experiment.report import write_csv

__all__ = ["experiments", "setup_text", "write_paper"]


def experiments(res: PaperResults, plan: PaperPlan) -> list[tuple[ExperimentConfig, list[RunResult]]]:
    """Every config of the plan with its runs (the trigger configs' runs cut out of res.triggers)."""
    out = [(c, res.main.get(c.dataset, [])) for c in plan.main]
    out += [(c, res.nodp.get(c.dataset, [])) for c in plan.nodp]
    out += list(zip(plan.triggers, split_runs(res.triggers, plan.triggers), strict=True))
    return out + [(plan.worse, res.worse), (plan.churn, res.churn), (plan.mia, res.mia)]


def _seeds(seeds: Sequence[int]) -> str:
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(str(s) for s in seeds)})"


def _differences(base: ExperimentConfig, cfg: ExperimentConfig) -> str:
    """The settings in which cfg differs from base, as `field = value` (its name aside)."""
    diff = [f"`{f.name} = {getattr(cfg, f.name)!r}`" for f in fields(ExperimentConfig)
            if f.name not in ("name", "output") and getattr(cfg, f.name) != getattr(base, f.name)]
    return ", ".join(diff) if diff else "none"


def _privacy(c: ExperimentConfig) -> str:
    budget = (f"ε budget {c.epsilon_budget} at δ = {c.delta}, charged per contribution by the chain's RDP "
              "accountant (a client whose next contribution would pass it sits out)")
    if c.dp_mode == "distributed":
        return (f"distributed user-level Gaussian DP under SecAgg: each client clips its whole update to L2 norm "
                f"{c.clip_norm} and adds its share of N(0, (σ·clip)²), σ = {c.noise_multiplier}, sized for a noise "
                f"quorum of {c.noise_quorum_pct}% of its group, so every unmasked group sum carries the full "
                f"noise; {budget}")
    return (f"DP-SGD with σ = {c.noise_multiplier}, sampling rate {c.sample_rate}, clip {c.clip_norm}, "
            f"{c.dp_steps} steps per round; {budget}")


def setup_text(plan: PaperPlan) -> str:
    """The setup paragraph, built from the plan's configs."""
    d = plan.main[0]
    data = " and ".join(DATASET_NAMES.get(c.dataset, c.dataset) for c in plan.main)
    if d.client_examples > 0:
        split = (f"each of {d.clients} emulated clients draws {d.client_examples} training examples with "
                 f"Dirichlet α = {d.alpha} label proportions (shards overlap)")
    else:
        split = f"the training set is split over {d.clients} clients with Dirichlet α = {d.alpha} (disjoint shards)"
    seeds = "; ".join(f"{c.dataset}: {_seeds(c.seeds)}" for c in plan.main)
    fewer = [c.dataset for c in plan.main[1:] if len(c.seeds) < len(d.seeds)]
    fewer_text = (f" {' and '.join(fewer)} {'uses' if len(fewer) == 1 else 'use'} fewer seeds than {d.dataset} "
                  "(slower training).") if fewer else ""
    others = "".join(f" The {c.dataset} config differs from the {d.dataset} one in: {_differences(d, c)}."
                     for c in plan.main[1:])
    group = min(d.group_size, d.round_size)
    screen = (f"the input screen (an update must have cosine ≥ {d.screen_min_cosine} with the root update and L2 "
              f"norm ≤ {d.clip_norm})" if d.screen else "no input screen")
    # fedavg is no robust rule: saying it "assumes f bad groups" would claim a tolerance it lacks.
    rule = ("rule `fedavg` (a plain mean) across group means" if d.rule == "fedavg" else
            f"robust rule `{d.rule}` across group means assuming f = {d.byzantine} bad groups")
    return f"""**Setup.** Data: {data}; {split}. {d.round_size} clients are selected per round, for {d.rounds} rounds,
each training {d.local_epochs} local epoch{'s' if d.local_epochs != 1 else ''} at lr {d.lr} (batch {d.batch_size}).
Seeds: {seeds}.{fewer_text} Attacks: {d.byzantine_fraction:.0%} Byzantine clients ({d.num_byzantine} of
{d.clients}) at attack scale {d.attack_scale:g}: {", ".join(f"`{a}`" for a in d.attacks if a != "none")}; the
backdoor's trigger is `{d.backdoor_trigger}` at {d.backdoor_location} with target label {d.backdoor_target}
(only the attackers and the ASR measurement know it); under `sybil` each attacker tries to enroll {d.sybils} more
identities. Privacy (FedAvg + DP + SecAgg and FedLedger): {_privacy(d)}. FedLedger: SecAgg groups of {group}
(coordinate bound {d.secagg_clip}), {screen}, then {rule}, reputation-weighted selection, and an evaluator
that quarantines versions whose canary accuracy falls more than {d.max_regression:g} below the last good one.
FedLedger without DP: the same without the noise and the budget. `robust_plain` (Flower-style robust
baseline): `{d.robust_baseline_rule}` with f = {d.byzantine} on every individual plaintext update, no DP, no
SecAgg. Centralized: the same model on the pooled clean data (the upper bound). Rounds to target: first
round at {d.target_accuracy:.0%} test accuracy.{others}
Cells are mean ± sd over seeds; "(k/n seeds)" marks a figure only k of n seeds produced; "—" is a figure the
method does not produce."""


def _at(curve: Sequence[float], i: int) -> float | None:
    return curve[i] if i < len(curve) else None


def _curves(runs: Sequence[tuple[str, RunResult]]) -> list[dict[str, Any]]:
    out = []
    for experiment, r in runs:
        n = max(len(r.accuracy_curve), len(r.epsilon_curve), len(r.reputation_honest_curve),
                len(r.reputation_byzantine_curve))
        for i in range(n):
            out.append({"experiment": experiment, "method": r.method, "attack": r.attack, "seed": r.seed,
                        "round": i + 1, "accuracy": _at(r.accuracy_curve, i), "epsilon": _at(r.epsilon_curve, i),
                        "reputation_honest": _at(r.reputation_honest_curve, i),
                        "reputation_byzantine": _at(r.reputation_byzantine_curve, i)})
    return out


def _per_dataset(title: str, tables: Sequence[tuple[ExperimentConfig, Table]]) -> str:
    return f"## {title}\n\n" + "\n\n".join(f"### {DATASET_NAMES.get(c.dataset, c.dataset)}\n\n{t.markdown}"
                                           for c, t in tables)


def _setting(base: ExperimentConfig, cfgs: Sequence[ExperimentConfig]) -> str:
    return " ".join(f"`{c.name}` differs from `{base.name}` in: {_differences(base, c)}; {_seeds(c.seeds)}."
                    for c in cfgs)


def write_paper(res: PaperResults, plan: PaperPlan, markdown: Path, results_dir: Path, command: str,
                plots: Sequence[Path] = (), finished: datetime | None = None) -> list[Path]:
    """Write the markdown report and its CSV files (tables, goals, runs, curves); return the paths written."""
    finished = finished or datetime.now(UTC)
    main = {c.dataset: (c, res.main.get(c.dataset, [])) for c in plan.main}
    nodp = {c.dataset: res.nodp.get(c.dataset, []) for c in plan.nodp}
    t1 = [(c, benign_table(c, runs, nodp.get(c.dataset, []))) for c, runs in main.values()]
    t2 = [(c, attack_table(c, runs)) for c, runs in main.values()]
    trig_main, trig_runs = main.get(plan.triggers[0].dataset if plan.triggers else plan.main[0].dataset,
                                    (plan.main[0], []))
    t3 = trigger_table(trig_main, trig_runs, plan.triggers, split_runs(res.triggers, plan.triggers))
    worse_main, worse_ref = main.get(plan.worse.dataset, (plan.main[0], []))
    t4 = worse_table(plan.worse, res.worse, worse_ref)
    t5, t6 = churn_table(plan.churn, res.churn), mia_table(plan.mia, res.mia)
    goals_md, goals_rows = goals_table(res, plan)
    labelled = [(c.name, r) for c, runs in experiments(res, plan) for r in runs]
    written = [write_rows(results_dir / "runs.csv", [{"experiment": name, **r.row()} for name, r in labelled])]
    for c, runs in experiments(res, plan):  # per experiment: its runs and report.py's mean ± sd summary
        written += write_csv(runs, results_dir / "experiments" / c.name)
    for name, rows in (("table1_benign", [row for _, t in t1 for row in t.rows]),
                       ("table2_attacks", [row for _, t in t2 for row in t.rows]), ("table3_triggers", t3.rows),
                       ("table4_worse", t4.rows), ("table5_churn", t5.rows), ("table6_mia", t6.rows),
                       ("goals", goals_rows), ("curves", _curves(labelled))):
        written.append(write_rows(results_dir / f"{name}.csv", rows))
    rel = Path(results_dir.name) if markdown.parent == results_dir.parent else results_dir
    figures = "\n\n".join(f"![{p.stem}]({rel / p.name})" for p in plots) or "No plots were written."
    sybils = "\n\n".join(line for c, runs in main.values() if (line := sybil_line(runs)))
    w, ch, mia = plan.worse, plan.churn, plan.mia
    text = f"""# FedLedger results

Run finished {finished:%Y-%m-%d %H:%M} UTC after {res.seconds:.0f} s ({res.seconds / 60:.1f} min), produced by:

```sh
{command}
```

Every run is the fast in-process mode (the chain's state machine as a library, clients trained by
the harness's engine). CSV files (one per table, the goals, every run, the per-round curves, and per
experiment `runs.csv` + `summary.csv`) and the plots are in `{rel}/`.

{setup_text(plan)}

{_per_dataset("Table 1: benign training", t1)}

Valid-update acceptance: the share of honest clients' submissions that entered an aggregate.
Promoted rounds: the share of rounds whose new model was trusted (the baselines use every model).

{_per_dataset(f"Table 2: {plan.main[0].byzantine_fraction:.0%} Byzantine clients", t2)}

Accuracy drop: the same method's benign accuracy of the same seed minus its accuracy under the
attack, in percentage points. MIA AUC on the final model: members are the clients' training pool,
non-members the test set; the loss-threshold attack (Yeom et al. 2018) and the shadow-model attack
(Shokri et al. 2017).

{sybils}

## Table 3: unknown triggers

{t3.markdown}

The first rows are the main {trig_main.dataset} backdoor runs; the others use triggers the defense
never sees, with drops against the main {trig_main.dataset} benign run of the same method and seed.
{_setting(trig_main, plan.triggers)}

## Table 4: worse attackers ({w.byzantine_fraction:.0%} Byzantine, scale {w.attack_scale:g})

{t4.markdown}

Drops against the main {worse_main.dataset} benign run of the same method and seed.
{_setting(worse_main, [w])}

## Table 5: churn ({ch.availability:.0%} availability, {ch.dropout:.0%} mid-round dropout)

{t5.markdown}

Each client is online for a round with probability {ch.availability:g}; each selected online client drops
out after sharing its SecAgg keys and before its masked input with probability {ch.dropout:g}. A round is
successful when it produces a new model. {_setting(plan.main[0], [ch])}

## Table 6: membership inference

{t6.markdown}

A setting chosen so that plain FedAvg memorizes its training data. {_setting(plan.main[0], [mia])}

## Goals

{goals_md}

Byzantine and valid-update acceptance goals cover {", ".join(f"`{a}`" for a in BYZANTINE_ATTACKS)} (the attacks
whose updates differ from honest ones); every figure is a mean over seeds, a worst case names its attack.

## Plots

{figures}
"""
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(text, encoding="utf-8")
    return [markdown, *written]
