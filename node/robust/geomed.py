"""Geometric median by smoothed Weiszfeld iterations (as in RFA, Pillutla et al. 2022).

The iterate z = sum_i alpha_i x_i (sum alpha = 1) is kept as its N coefficients: with the Gram
matrix of the centered rows, |x_i - z|^2 = G_ii - 2 (G alpha)_i + alpha' G alpha, so an iteration
costs O(N^2) instead of two passes over the (N, d) data, and the data is read once more at the end
to form z in float64.

Start: the coordinate mean (alpha = 1/N), deterministic. Step: alpha_i proportional to
1 / max(|x_i - z|, eps). Stop after `iters` steps (default 100) or when the objective
sum_i |x_i - z| improves by less than tol (relative).

Verdicts: the distances of the clients to the result; a client is "flagged" if its distance is
above median + flag_k * 1.4826 * MAD (the MAD scaled to a standard deviation for Gaussian
distances; default flag_k = 3), else "kept". Scores: those distances (float64).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedledger.node.robust.distances import gram_matrix, span_sq_distances
from fedledger.node.robust.reductions import weighted_column_sum
from fedledger.node.robust.types import RobustError, RobustResult, Verdict
from fedledger.node.robust.validation import validate_matrix

__all__ = ["DEFAULT_GEOMED_ITERS", "distance_flags", "geometric_median", "weiszfeld_weights"]

DEFAULT_GEOMED_ITERS = 100
# 1.4826 * MAD estimates a standard deviation for normally distributed values.
_MAD_SCALE = 1.4826


def weiszfeld_weights(
    gram: npt.NDArray[np.float64], iters: int, eps: float, tol: float
) -> tuple[npt.NDArray[np.float64], int]:
    """The geometric median's coefficients over the rows (summing to 1) and the iterations run."""
    n = gram.shape[0]
    alpha = np.full(n, 1.0 / n, dtype=np.float64)
    dist = np.sqrt(span_sq_distances(gram, alpha))
    objective = float(dist.sum())
    for step in range(1, iters + 1):
        weights = 1.0 / np.maximum(dist, eps)
        new_alpha = weights / weights.sum()
        new_dist = np.sqrt(span_sq_distances(gram, new_alpha))
        new_objective = float(new_dist.sum())
        alpha, dist = new_alpha, new_dist
        if objective - new_objective <= tol * objective:
            return alpha, step
        objective = new_objective
    return alpha, iters


def distance_flags(dist: npt.NDArray[np.float64], flag_k: float) -> tuple[str, ...]:
    """ "flagged" for distances above median + flag_k * 1.4826 * MAD, "kept" otherwise."""
    med = float(np.median(dist))
    mad = float(np.median(np.abs(dist - med)))
    limit = med + flag_k * _MAD_SCALE * mad
    return tuple(Verdict.FLAGGED if float(v) > limit else Verdict.KEPT for v in dist)


def geometric_median(
    x: npt.NDArray[np.float32],
    iters: int | None = None,
    eps: float = 1e-8,
    tol: float = 1e-7,
    flag_k: float = 3.0,
    threads: int | None = None,
) -> RobustResult:
    """Smoothed Weiszfeld geometric median of the rows (module docstring). Works for any N >= 1."""
    x = validate_matrix(x)
    steps = DEFAULT_GEOMED_ITERS if iters is None else iters
    if steps < 1 or eps <= 0 or tol < 0 or flag_k < 0:
        raise RobustError(
            f"geomed needs iters >= 1, eps > 0, tol >= 0, flag_k >= 0; got {steps}, {eps}, {tol}, {flag_k}"
        )
    gram = gram_matrix(x, threads=threads)
    alpha, _ = weiszfeld_weights(gram, steps, eps, tol)
    aggregate = weighted_column_sum(x, alpha, threads=threads).astype(np.float32)
    dist = np.sqrt(span_sq_distances(gram, alpha))
    return RobustResult(aggregate=aggregate, verdicts=distance_flags(dist, flag_k), scores=dist)
