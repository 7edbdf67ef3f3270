"""FLTrust (Cao et al. 2021): trust clients by their direction relative to a server root update.

The server computes g0 on its own small root dataset. Client i gets trust
TS_i = ReLU(cos(g_i, g0)); its update is rescaled to the root update's norm,
g_i * |g0| / |g_i|, and the aggregate is sum_i TS_i * rescaled g_i / sum_i TS_i.
A client with a zero update has no direction and gets trust 0. If no client has positive trust the
aggregate is the zero vector (nothing trusted moves the model). g0 must be nonzero.

Verdicts: trust 0 is "flagged", positive trust "kept". Scores: the trust TS_i in [0, 1].
Dots and norms are float64 numpy reductions (reductions.py), machine-independent.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedledger.node.robust.reductions import row_dots, row_sq_norms, weighted_column_sum
from fedledger.node.robust.types import RobustError, RobustResult, Verdict
from fedledger.node.robust.validation import validate_matrix, validate_vector

__all__ = ["fltrust", "trust_scores"]


def trust_scores(
    dots: npt.NDArray[np.float64], norms: npt.NDArray[np.float64], root_norm: float
) -> npt.NDArray[np.float64]:
    """ReLU of the cosine similarity to the root update, 0 for zero-norm clients; clipped to [0, 1]."""
    safe = np.where(norms > 0.0, norms, 1.0)
    cos = np.where(norms > 0.0, dots / (safe * root_norm), 0.0)
    return np.asarray(np.clip(cos, 0.0, 1.0), dtype=np.float64)


def fltrust(
    x: npt.NDArray[np.float32], root_update: npt.NDArray[np.floating] | None, threads: int | None = None
) -> RobustResult:
    """FLTrust aggregate of the rows given the server's root update g0 (module docstring)."""
    x = validate_matrix(x)
    if root_update is None:
        raise RobustError("fltrust needs the server's root update (RobustParams.root_update), got None")
    g0 = validate_vector(root_update, x.shape[1], "root_update")
    root_norm = float(np.sqrt(row_sq_norms(g0[None, :], threads)[0]))
    if root_norm == 0.0:
        raise RobustError("fltrust needs a nonzero root update; got the zero vector")
    norms = np.sqrt(row_sq_norms(x, threads))
    trust = trust_scores(row_dots(x, g0, threads), norms, root_norm)
    total = float(trust.sum())
    verdicts = tuple(Verdict.KEPT if t > 0.0 else Verdict.FLAGGED for t in trust)
    if total == 0.0:
        return RobustResult(aggregate=np.zeros(x.shape[1], dtype=np.float32), verdicts=verdicts, scores=trust)
    safe = np.where(norms > 0.0, norms, 1.0)
    weights = np.where(trust > 0.0, trust * (root_norm / safe), 0.0) / total
    aggregate = weighted_column_sum(x, weights, threads=threads).astype(np.float32)
    return RobustResult(aggregate=aggregate, verdicts=verdicts, scores=trust)
