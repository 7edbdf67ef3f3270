"""`fedledger bench groups`: the privacy/robustness trade-off of the SecAgg group size g, measured.

N clients, a fraction of them Byzantine, run one real grouped SecAgg+ round
(`node.secagg.simulate_grouped_round`: masks, shares, unmasking) for each g; the task's robust
rule then runs across the G = ⌊N/g⌋ group means, exactly as the aggregator does
(`node.aggregation.combine.combine_rows`). For each g it reports:

* privacy: the anonymity set (each input is hidden in a sum of at least g);
* robustness: how many groups hold an attacker, and the L2 error of the result against the
  honest clients' mean, next to plain FedAvg's error on the same inputs;
* cost: the round's wall time (client and server work together, in one process).

Attackers sign-flip and scale (−4×) an honest-looking update; honest clients share a mean
direction plus per-client noise, as clipped, noised DP updates do.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["bench_groups"]


def _inputs(n: int, d: int, bad: int, seed: int, clip: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.normal(0, 1, d)
    mean *= 0.3 * clip / np.abs(mean).max()
    honest = mean + rng.normal(0, 0.1 * clip, (n, d))
    rows = honest.copy()
    rows[:bad] = -4.0 * honest[:bad]  # the attackers are the first rows; the seeded shuffle scatters them
    return np.clip(rows, -clip, clip).astype(np.float32), honest[bad:].mean(axis=0)


def bench_groups(n: int = 100, d: int = 2000, byzantine_pct: int = 20, sizes: Sequence[int] = (2, 5, 10, 20, 50),
                 rule: str = "median", seed: int = 0, clip: float = 1.0) -> dict[str, Any]:
    """Run one grouped SecAgg+ round per group size and measure privacy, robustness and time."""
    from fedledger.node.aggregation.combine import combine_rows
    from fedledger.sdk.secagg import simulate_grouped_round

    bad = n * byzantine_pct // 100
    rows, honest_mean = _inputs(n, d, bad, seed, clip)
    fedavg_err = float(np.linalg.norm(rows.astype(np.float64).mean(axis=0) - honest_mean))
    round_seed = hashlib.sha256(b"bench-groups-%d" % seed).digest()
    out: list[dict[str, Any]] = []
    for g in sizes:
        started = time.perf_counter()
        res = simulate_grouped_round(rows, clip, round_seed, g)
        secagg_s = time.perf_counter() - started
        groups = len(res.groups)
        bad_groups = sum(1 for members in res.groups if any(m < bad for m in members))
        # A robust rule across G means tolerates f < G/2 bad means; the policy declares f for G.
        f = max(0, min((groups - 1) // 2, bad_groups))
        entry: dict[str, Any] = {"group_size": g, "groups": groups, "anonymity_set": min(len(m) for m in res.groups),
                                 "groups_with_attacker": bad_groups, "secagg_round_s": round(secagg_s, 3)}
        try:
            vector, verdicts = combine_rows(res.means, res.counts, rule if groups >= 3 else "fedavg", f)
            entry["error_vs_honest_mean"] = round(float(np.linalg.norm(vector - honest_mean)), 4)
            entry["flagged_groups"] = sum(1 for v in verdicts if v == "flagged")
        except ValueError as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return {"clients": n, "dim": d, "byzantine": bad, "rule": rule, "clip": clip,
            "fedavg_error_vs_honest_mean": round(fedavg_err, 4),
            "plain_robust_error_vs_honest_mean": round(float(np.linalg.norm(
                combine_rows(rows, np.ones(n, dtype=np.int64), rule, bad)[0] - honest_mean)), 4),
            "by_group_size": out}
