"""Combine rows (client updates, or SecAgg group means) with a task's on-chain rule into one vector.

`fedavg` is the weighted mean (weights: examples per client, or inputs per group); every other
rule is a Byzantine-robust aggregator from `fedledger.node.robust`, which ignores the weights by
design (a weight is a claim the attacker controls). Each row gets a verdict: kept, trimmed or
flagged; the aggregator turns "flagged" into a reputation penalty on chain.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedledger.node.aggregation.fedavg import AggregationError

__all__ = ["combine_rows"]


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
    from fedledger.node.robust import RobustError, RobustParams, get_robust_rule

    try:
        result = get_robust_rule(rule)(np.ascontiguousarray(rows, dtype=np.float32), RobustParams(f=byzantine))
    except RobustError as exc:
        raise AggregationError(f"{rule}: {exc}") from exc
    return np.asarray(result.aggregate, dtype=np.float32), tuple(str(v) for v in result.verdicts)
