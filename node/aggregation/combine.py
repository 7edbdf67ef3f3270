"""Combine rows (client updates, or SecAgg group means) with a task's on-chain rule into one vector.

`fedavg` is the weighted mean (weights: examples per client, or inputs per group); every other
rule is a Byzantine-robust aggregator from `fedledger.node.robust`, which ignores the weights by
design (a weight is a claim the attacker controls), followed by the cosine guard against the
rule's own aggregate. Each row gets a verdict: kept, trimmed or flagged; the aggregator turns
"flagged" into a reputation penalty on chain and leaves the row out of the version's contributors.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedledger.node.aggregation.fedavg import AggregationError

__all__ = ["GUARD_COSINE", "combine_rows"]

GUARD_COSINE = 0.0  # rows whose cosine with the robust aggregate is below this are flagged


def combine_rows(rows: npt.NDArray[np.float32], weights: npt.NDArray[np.int64], rule: str,
                 byzantine: int) -> tuple[npt.NDArray[np.float32], tuple[str, ...]]:
    """The combined (d,) float32 vector and one verdict per row."""
    if rows.ndim != 2 or rows.shape[0] != weights.shape[0] or rows.shape[0] == 0:
        raise AggregationError(f"need an (N, d) matrix with N ≥ 1 and N weights, got {rows.shape} and "
                               f"{weights.shape}")
    if rule == "fedavg":
        total = int(weights.sum())
        if total <= 0 or int(weights.min()) < 0:
            raise AggregationError("fedavg needs non-negative weights with a positive sum")
        # float64 accumulation in row order: identical bytes for identical inputs.
        acc = np.zeros(rows.shape[1], dtype=np.float64)
        for row, w in zip(rows, weights, strict=True):
            acc += row.astype(np.float64) * float(w)
        return (acc / float(total)).astype(np.float32), ("kept",) * rows.shape[0]
    from fedledger.node.robust import RobustError, RobustParams, cosine_guard, get_robust_rule

    x = np.ascontiguousarray(rows, dtype=np.float32)
    try:
        result = get_robust_rule(rule)(x, RobustParams(f=byzantine))
        # Coordinate-wise rules only trim per coordinate; a row that points away from the robust
        # aggregate (cosine < 0: a sign flip, or a replacement toward another model) is flagged too.
        _, guard = cosine_guard(x, GUARD_COSINE, center=result.aggregate)
    except RobustError as exc:
        raise AggregationError(f"{rule}: {exc}") from exc
    rule_verdicts = [str(v) for v in result.verdicts]
    if rule == "krum":
        # Krum keeps a single client; the other N-1 are not suspects, so only the guard flags here.
        rule_verdicts = ["trimmed" if v == "flagged" else v for v in rule_verdicts]
    verdicts = tuple("flagged" if g == "flagged" else v for v, g in zip(rule_verdicts, guard, strict=True))
    return np.asarray(result.aggregate, dtype=np.float32), verdicts
