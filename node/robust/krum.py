"""Krum, Multi-Krum and Bulyan: select clients by their distances to their nearest neighbours.

Krum (Blanchard et al. 2017): client i's score is the sum of its squared distances to its
k = N - f - 2 nearest other clients; the lowest score wins. Needs N > 2f + 2. Multi-Krum
averages the m (default N - f) lowest-scored clients, scored once. Bulyan (El Mhamdi et al. 2018)
repeatedly picks the Krum winner of the clients not yet picked, re-scoring on that remaining set
with k = r - f - 2 (r remaining; at least 1, at most r - 1), until theta = N - 2f are picked; then
per coordinate it averages the beta = theta - 2f picked values closest to their median. Needs
N >= 4f + 3.

Ties (equal scores or equal distances) go to the lowest row index. Verdicts: picked clients are
"kept", the others "flagged". Scores: each client's Krum score over all N clients (for Bulyan,
too: the score of its first selection round).

Speed: one Gram matrix gives all distances (distances.py). Each row's neighbours are sorted once.
Bulyan never recomputes distances: when a client leaves the remaining set, every row's score drops
that client's distance if it was among the row's k nearest, or else the farthest of them (k shrinks
by one per pick), and extends to the next neighbour still remaining when k cannot shrink: O(N) per
pick instead of a re-sort.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedledger.node.robust.coordinate import closest_to_median_mean
from fedledger.node.robust.distances import sq_distances
from fedledger.node.robust.reductions import column_sum
from fedledger.node.robust.types import RobustError, RobustResult, Verdict
from fedledger.node.robust.validation import require_clients, validate_matrix

__all__ = ["bulyan", "krum", "krum_scores", "multi_krum"]


def _neighbours(dist: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Each row's other clients from nearest to farthest (ties: lowest index) and those distances.

    The row itself comes last (its distance set to +inf), so prefixes never include it.
    """
    masked = dist.copy()
    np.fill_diagonal(masked, np.inf)
    order = np.argsort(masked, axis=1, kind="stable")
    return order, np.take_along_axis(masked, order, axis=1)


def _neighbour_count(r: int, f: int) -> int:
    return min(max(r - f - 2, 1), r - 1)


def krum_scores(dist: npt.NDArray[np.float64], f: int) -> npt.NDArray[np.float64]:
    """Krum score of every row of a squared-distance matrix: the sum of its N - f - 2 smallest distances."""
    n = dist.shape[0]
    k = _neighbour_count(n, f)
    _, near = _neighbours(dist)
    return np.asarray(near[:, :k].sum(axis=1), dtype=np.float64)


def _check_krum(rule: str, n: int, f: int) -> None:
    require_clients(rule, n, 2 * f + 3, f"N > 2f + 2 for f={f}")


def _result(
    x: npt.NDArray[np.float32],
    picked: npt.NDArray[np.intp],
    aggregate: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float64],
) -> RobustResult:
    chosen = np.zeros(x.shape[0], dtype=np.bool_)
    chosen[picked] = True
    verdicts = tuple(Verdict.KEPT if c else Verdict.FLAGGED for c in chosen)
    return RobustResult(aggregate=aggregate, verdicts=verdicts, scores=scores)


def krum(x: npt.NDArray[np.float32], f: int, threads: int | None = None) -> RobustResult:
    """The single client with the lowest Krum score (a copy of its row). Needs N > 2f + 2."""
    x = validate_matrix(x)
    _check_krum("krum", x.shape[0], f)
    scores = krum_scores(sq_distances(x, threads=threads), f)
    best = int(np.argmin(scores))
    return _result(x, np.array([best], dtype=np.intp), x[best].copy(), scores)


def multi_krum(x: npt.NDArray[np.float32], f: int, m: int | None = None, threads: int | None = None) -> RobustResult:
    """The mean of the m (default N - f) clients with the lowest Krum scores. Needs N > 2f + 2, 1 <= m <= N."""
    x = validate_matrix(x)
    n = x.shape[0]
    _check_krum("multi_krum", n, f)
    count = n - f if m is None else m
    if not 1 <= count <= n:
        raise RobustError(f"multi_krum averages m clients, which needs 1 <= m <= N={n}; got m={count}")
    scores = krum_scores(sq_distances(x, threads=threads), f)
    picked = np.sort(np.argsort(scores, kind="stable")[:count])
    mean = column_sum(x, picked, threads)
    mean /= count
    return _result(x, picked, mean.astype(np.float32), scores)


class _RemainingScores:
    """Krum scores restricted to a shrinking set of remaining clients, updated per removal in O(N)."""

    def __init__(self, dist: npt.NDArray[np.float64], f: int) -> None:
        n = dist.shape[0]
        self.f = f
        self.order, self.near = _neighbours(dist)
        # position[i, j]: where client j sits in row i's neighbour order.
        self.position = np.empty((n, n), dtype=np.intp)
        np.put_along_axis(self.position, self.order, np.arange(n)[None, :].repeat(n, axis=0), axis=1)
        self.alive = np.ones(n, dtype=np.bool_)
        self.remaining = n
        self.k = _neighbour_count(n, f)
        # Row i's k nearest remaining neighbours are the remaining ones among order[i, :end[i]].
        self.end = np.full(n, self.k, dtype=np.intp)
        self.count = np.full(n, self.k, dtype=np.intp)
        self.scores = np.asarray(self.near[:, : self.k].sum(axis=1), dtype=np.float64)
        self._rows = np.arange(n)

    def best(self) -> int:
        """The remaining client with the lowest score (lowest index on ties)."""
        live = np.flatnonzero(self.alive)
        return int(live[np.argmin(self.scores[live])])

    def remove(self, j: int) -> None:
        """Take client j out of the remaining set and update every remaining row's score."""
        self.alive[j] = False
        self.remaining -= 1
        if self.remaining <= 1:
            return  # one client left: it is picked without a score
        rows = np.flatnonzero(self.alive)
        pos = self.position[rows, j]
        inside = pos < self.end[rows]
        hit = rows[inside]
        self.scores[hit] -= self.near[hit, pos[inside]]
        self.count[hit] -= 1
        self.k = _neighbour_count(self.remaining, self.f)
        too_many = rows[self.count[rows] > self.k]
        too_few = rows[self.count[rows] < self.k]
        if too_many.size:
            self._drop_last(too_many)
        if too_few.size:
            self._take_next(too_few)

    def _drop_last(self, rows: npt.NDArray[np.intp]) -> None:
        # The farthest remaining neighbour inside each row's prefix leaves it.
        q = self.end[rows] - 1
        dead = ~self.alive[self.order[rows, q]]
        while dead.any():
            q[dead] -= 1
            dead = ~self.alive[self.order[rows, q]]
        self.scores[rows] -= self.near[rows, q]
        self.end[rows] = q
        self.count[rows] -= 1

    def _take_next(self, rows: npt.NDArray[np.intp]) -> None:
        # The nearest remaining neighbour after each row's prefix joins it.
        q = self.end[rows].copy()
        skip = ~self.alive[self.order[rows, q]]
        while skip.any():
            q[skip] += 1
            skip = ~self.alive[self.order[rows, q]]
        self.scores[rows] += self.near[rows, q]
        self.end[rows] = q + 1
        self.count[rows] += 1


def bulyan(x: npt.NDArray[np.float32], f: int, threads: int | None = None) -> RobustResult:
    """Bulyan over Krum: pick theta = N - 2f clients one Krum at a time, then a trimmed mean around the median.

    Needs N >= 4f + 3. See the module docstring for the re-scoring and tie rules, and
    coordinate.closest_to_median_mean for the second stage.
    """
    x = validate_matrix(x)
    n = x.shape[0]
    require_clients("bulyan", n, 4 * f + 3, f"N >= 4f + 3 for f={f}")
    theta = n - 2 * f
    beta = theta - 2 * f
    state = _RemainingScores(sq_distances(x, threads=threads), f)
    first_scores = state.scores.copy()
    picked: list[int] = []
    for _ in range(theta):
        j = state.best()
        picked.append(j)
        state.remove(j)
    rows = np.array(sorted(picked), dtype=np.intp)
    aggregate = closest_to_median_mean(x, rows, beta, threads)
    return _result(x, rows, aggregate, first_scores)
