"""Cosine-similarity anomaly scores against a robust center, and flags for rows below a threshold.

A guard runs before (or beside) an aggregator: each row's cosine similarity to the coordinate-wise
median (or a given center) says whether it points the same way as the bulk of the clients. Sign
flips score near -1. A zero row, or a zero center, has no direction and scores 0.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fedledger.node.robust.coordinate import median_vector
from fedledger.node.robust.reductions import row_dots, row_sq_norms
from fedledger.node.robust.types import RobustError, Verdict
from fedledger.node.robust.validation import validate_matrix, validate_vector

__all__ = ["cosine_guard", "cosine_scores", "flag_below"]


def cosine_scores(
    x: npt.NDArray[np.float32], center: npt.NDArray[np.floating] | None = None, threads: int | None = None
) -> npt.NDArray[np.float64]:
    """cos(x_i, center) for every row, in [-1, 1]; center defaults to the coordinate-wise median."""
    x = validate_matrix(x)
    c = median_vector(x, threads) if center is None else validate_vector(center, x.shape[1], "center")
    center_norm = float(np.sqrt(row_sq_norms(c[None, :], threads)[0]))
    norms = np.sqrt(row_sq_norms(x, threads))
    if center_norm == 0.0:
        return np.zeros(x.shape[0], dtype=np.float64)
    safe = np.where(norms > 0.0, norms, 1.0)
    cos = np.where(norms > 0.0, row_dots(x, c, threads) / (safe * center_norm), 0.0)
    return np.asarray(np.clip(cos, -1.0, 1.0), dtype=np.float64)


def flag_below(scores: npt.NDArray[np.float64], threshold: float) -> tuple[str, ...]:
    """ "flagged" for each score strictly below threshold, "kept" for the others."""
    if not (isinstance(threshold, int | float) and math.isfinite(threshold)):
        raise RobustError(f"threshold must be a finite number, got {threshold!r}")
    return tuple(Verdict.FLAGGED if float(s) < threshold else Verdict.KEPT for s in scores)


def cosine_guard(
    x: npt.NDArray[np.float32],
    threshold: float = 0.0,
    center: npt.NDArray[np.floating] | None = None,
    threads: int | None = None,
) -> tuple[npt.NDArray[np.float64], tuple[str, ...]]:
    """Cosine scores against the robust center and the verdicts of flag_below(scores, threshold)."""
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
        raise RobustError(f"cosine threshold must be a finite number in [-1, 1], got {threshold!r}")
    scores = cosine_scores(x, center, threads)
    return scores, flag_below(scores, threshold)
