"""Summaries of an experiment's runs: mean ± sd over seeds per (attack, method), as a table and as CSV files."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fedledger.apps.experiment.common import RunResult

__all__ = ["COLUMNS", "format_table", "mean_sd", "summarize", "write_csv"]

# (field of RunResult, column title, scale)
COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("accuracy", "accuracy", 1.0),
    ("macro_f1", "macro-F1", 1.0),
    ("rounds_to_target", "rounds→target", 1.0),
    ("backdoor_asr", "backdoor ASR", 1.0),
    ("mia_auc", "MIA AUC", 1.0),
    ("mia_shadow_auc", "shadow MIA AUC", 1.0),
    ("mb_per_client_round", "MB/client/round", 1.0),
    ("aggregation_ms", "aggregation ms", 1.0),
    ("commit_ms", "commit ms", 1.0),  # see RunResult.commit_ms: in-process block, or real tx commit
    ("epsilon", "final ε", 1.0),
    ("benign_acceptance", "benign accepted", 1.0),
    ("byzantine_acceptance", "Byzantine accepted", 1.0),
    ("successful_rounds", "successful rounds", 1.0),
    ("promoted_rounds", "promoted rounds", 1.0),
    ("round_s", "round s", 1.0),
)


def mean_sd(values: Iterable[float | int | None]) -> tuple[float, float, int] | None:
    """(mean, sample sd, n) over the finite values; None when there are none."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return None
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return mean, sd, len(xs)


def summarize(results: Sequence[RunResult]) -> list[dict[str, Any]]:
    """One row per (attack, method) in first-seen order: seeds, and mean/sd/n of every column."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.attack, r.method), []).append(r)
    rows = []
    for (attack, method), runs in groups.items():
        row: dict[str, Any] = {"attack": attack, "method": method, "seeds": len(runs)}
        for name, _, _ in COLUMNS:
            st = mean_sd([getattr(r, name) for r in runs])
            row[f"{name}_mean"], row[f"{name}_sd"], row[f"{name}_n"] = st if st is not None else (None, None, 0)
        rows.append(row)
    return rows


def _cell(row: dict[str, Any], name: str) -> str:
    mean, sd, n = row[f"{name}_mean"], row[f"{name}_sd"], row[f"{name}_n"]
    if mean is None:
        return "—"
    digits = 1 if abs(mean) >= 10 else 3
    text = f"{mean:.{digits}f} ± {sd:.{digits}f}"
    return text if n == row["seeds"] else f"{text} ({n}/{row['seeds']})"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table (markdown pipes) of the summary; '—' where a method does not produce a figure."""
    head = ["attack", "method", *[title for _, title, _ in COLUMNS]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["attack"], row["method"], *[_cell(row, name) for name, _, _ in COLUMNS]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(results: Sequence[RunResult], out_dir: Path) -> tuple[Path, Path]:
    """Write runs.csv (one line per run) and summary.csv (mean/sd per attack and method) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_path, summary_path = out_dir / "runs.csv", out_dir / "summary.csv"
    run_rows = [r.row() for r in results]
    for path, rows in ((runs_path, run_rows), (summary_path, summarize(results))):
        with path.open("w", newline="", encoding="utf-8") as fh:
            if rows:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    return runs_path, summary_path
