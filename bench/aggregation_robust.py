"""Robust aggregation, FedLedger vs Flower, on one (N, d) matrix in one process.

For one size the bench generates the updates once (aggregation_support.make_updates: f attackers,
fixed seed), then times on those same arrays: one pass over the data (``x.sum(axis=0)``, the floor
any aggregator pays), every FedLedger rule through `get_robust_rule(name)(x, RobustParams(...))`,
and Flower's function for the same rule with the same f, trim and m (aggregation_flower). It
reports each time, the ratio Flower / FedLedger, and the largest absolute difference between the
two aggregates (0 for Krum when both pick the same client; rounding-level for the means, which
FedLedger accumulates in float64 and Flower in float32).

Flower's Bulyan re-scores every pair of clients for each of its N − 2f picks. Its time is first
estimated from Flower's Krum on the same data (Krum's pairwise pass scales with r² for r clients
left: time_krum · Σ (r/N)²); it runs only when enabled and when that estimate fits the budget, and
the estimate is reported either way.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.bench.aggregation_flower import FLOWER_RULES, flower_rule
from fedledger.bench.aggregation_support import BenchError, Timing, make_updates, measure, ratio, rng_for
from fedledger.node.robust import RobustParams, Verdict, get_robust_rule

__all__ = ["RULES", "bench_robust", "default_f"]

RULES = ("median", "trimmed_mean", "krum", "multi_krum", "bulyan", "geomed", "centered_clipping", "fltrust")


def default_f(n: int) -> int:
    """The assumed Byzantine count: 10% of N, at least 1, and small enough for Bulyan (N >= 4f + 3)."""
    f = max(1, n // 10)
    if n < 4 * f + 3:
        raise BenchError(f"robust bench needs N >= 7 (Bulyan with f >= 1 needs N >= 4f + 3), got N={n}")
    return f


def _our_params(name: str, f: int, m: int, root: npt.NDArray[np.float32]) -> tuple[RobustParams, dict[str, Any]]:
    if name in ("median", "trimmed_mean"):
        return RobustParams(f=f, trim=f), {"f": f, "trim": f}
    if name in ("krum", "bulyan"):
        return RobustParams(f=f), {"f": f}
    if name == "multi_krum":
        return RobustParams(f=f, m=m), {"f": f, "m": m}
    if name == "fltrust":
        return RobustParams(root_update=root), {"root_update": "center + 0.1·N(0,1) (seeded)"}
    return RobustParams(), {"defaults": True}  # geomed, centered_clipping


def _bulyan_estimate(krum_s: float, n: int, f: int) -> float:
    theta = n - 2 * f
    return krum_s * sum((r / n) ** 2 for r in range(n - theta + 1, n + 1))


def bench_robust(
    n: int,
    d: int,
    seed: bytes,
    repeats: int = 3,
    *,
    flower: bool = True,
    flower_bulyan: bool = True,
    flower_budget_s: float = 600.0,
    single_over_s: float = 20.0,
    outputs: dict[str, npt.NDArray[np.float32]] | None = None,
) -> dict[str, Any]:
    """Time every rule at size (n, d); Flower's side only when `flower` (the caller checked it imports).

    `outputs`, when given, receives FedLedger's aggregate per rule and the input matrix under "x"
    (for tests; the JSON carries no arrays).
    """
    if n < 1 or d < 1:
        raise BenchError(f"robust size must be positive, got N={n}, d={d}")
    f = default_f(n)
    m = n - f
    x = make_updates(n, d, f, seed)
    root = x[: n - f].mean(axis=0, dtype=np.float64).astype(np.float32)
    root += np.float32(0.1) * rng_for(seed, "fltrust-root", n, d).standard_normal(d, dtype=np.float32)
    if outputs is not None:
        outputs["x"] = x
        outputs["root_update"] = root
    one_pass = measure(lambda: x.sum(axis=0), repeats, single_over_s)
    report: dict[str, Any] = {
        "N": n, "d": d, "f": f, "m": m, "attackers": f"last {f} rows: -3*center + N(0,1)",
        "one_pass_sum": one_pass.to_json(), "rules": {},
    }
    flower_krum_s: float | None = None
    for name in RULES:
        params, shown = _our_params(name, f, m, root)
        rule = get_robust_rule(name)
        ours: Timing[Any] = measure(partial(rule, x, params), repeats, single_over_s)
        result = ours.result
        if outputs is not None:
            outputs[name] = result.aggregate
        entry: dict[str, Any] = {
            "fedledger": ours.to_json() | {"params": shown},
            "passes": round(ours.best / one_pass.best, 1) if one_pass.best > 0 else None,
            "verdicts": {v: result.verdicts.count(v) for v in Verdict.ALL},
        }
        if name not in FLOWER_RULES:
            entry["flower"] = {"status": "no equivalent in flwr.server.strategy.aggregate"}
        elif not flower:
            entry["flower"] = {"status": "unavailable"}
        else:
            entry["flower"] = _flower_entry(name, x, f, m, repeats, single_over_s, flower_bulyan, flower_budget_s,
                                            flower_krum_s)
            if "best_s" in entry["flower"]:
                if name == "krum":
                    flower_krum_s = entry["flower"]["best_s"]
                entry["ratio_flower_over_fedledger"] = ratio(entry["flower"]["best_s"], ours.best)
                peer = entry["flower"].pop("_aggregate")
                entry["max_abs_diff"] = float(np.max(np.abs(np.asarray(peer, dtype=np.float64) - result.aggregate)))
        report["rules"][name] = entry
    return report


def _flower_entry(name: str, x: npt.NDArray[np.float32], f: int, m: int, repeats: int, single_over_s: float,
                  flower_bulyan: bool, budget_s: float, krum_s: float | None) -> dict[str, Any]:
    call, params = flower_rule(name, x, f, m)
    entry: dict[str, Any] = {"params": params}
    if name == "bulyan":
        n = x.shape[0]
        if krum_s is not None:
            entry["estimate_s"] = round(_bulyan_estimate(krum_s, n, f), 1)
        if not flower_bulyan:
            entry["status"] = "skipped (--no-flower-bulyan)"
            return entry
        if entry.get("estimate_s", 0.0) > budget_s:
            entry["status"] = f"skipped: estimated {entry['estimate_s']} s > budget {budget_s} s (--flower-budget)"
            return entry
        repeats = 1  # minutes per run: one run is the measurement
    timing = measure(call, repeats, single_over_s)
    entry.update(timing.to_json())
    entry["_aggregate"] = timing.result
    return entry
