"""Coordinate-wise rules: median, trimmed mean, and Bulyan's mean of the values closest to the median.

Method (measured on the 2-core reference machine, N=100, d=1e6 float32): a full sort of each
coordinate's N values beats np.median and np.partition along the client axis by about 4-5x
(np.median ~1.6 s, np.partition ~1.5 s, np.sort(axis=0) ~0.42 s). Faster still is to sort
cache-sized column blocks transposed to (columns, N), so that every sort runs over contiguous
memory (~0.30 s on one thread, ~0.16 s on two). Sorting float32 is exact, so every order
statistic and the kept values are exact; sums accumulate in float64 and round once to float32.
A zero in the output is always +0.0 (sorts may order -0.0 and +0.0 either way).

Verdicts (median and trimmed mean): per coordinate, the kept range is [s_t, s_{N-1-t}], the t-th
smallest to the t-th largest value, where t is `trim` (default f). A client is outside it in a
coordinate if its value lies strictly below s_t or strictly above s_{N-1-t}; a client tied with a
kept value counts as kept, so ties never make the verdict depend on row order. A client outside
in more than half of the coordinates is "trimmed", else "kept"; its score is the fraction of
coordinates where it was outside. With t = 0 nobody is outside.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from fedledger.node.robust.blocks import map_blocks, sort_block_width
from fedledger.node.robust.types import RobustError, RobustResult, Verdict
from fedledger.node.robust.validation import require_clients, require_finite, validate_matrix

__all__ = ["closest_to_median_mean", "coordinate_median", "median_vector", "sorted_columns", "trimmed_mean"]


def sorted_columns(
    x: npt.NDArray[np.float32], start: int, stop: int, rows: npt.NDArray[np.intp] | None = None
) -> npt.NDArray[np.float32]:
    """Columns start:stop of x (only the given rows, if any) as a (stop - start, n) block, each row sorted."""
    block = x[:, start:stop] if rows is None else x[rows, start:stop]
    # Always a copy: ascontiguousarray would hand back a view when the block is one column wide,
    # and the in-place sort would then reorder the caller's matrix.
    out = block.T.copy(order="C")
    out.sort(axis=1)
    return out


def _resolve_trim(rule: str, n: int, f: int, trim: int | None) -> int:
    t = f if trim is None else trim
    require_clients(rule, n, 2 * f + 1, f"N >= 2f + 1 for f={f}")
    if n <= 2 * t:
        raise RobustError(f"{rule} trims {t} values from each end, which needs N > 2*trim = {2 * t}; got N={n}")
    return t


def _verdicts(outside: npt.NDArray[np.int64], d: int) -> tuple[tuple[str, ...], npt.NDArray[np.float64]]:
    scores = outside.astype(np.float64) / d
    verdicts = tuple(Verdict.TRIMMED if 2 * int(c) > d else Verdict.KEPT for c in outside)
    return verdicts, scores


def _coordinate_rule(
    x: npt.NDArray[np.float32], t: int, median: bool, threads: int | None, check_finite: bool = False
) -> RobustResult:
    n, d = x.shape
    agg = np.empty(d, dtype=np.float32)
    lo, hi = (n - 1) // 2, n // 2

    def block(start: int, stop: int) -> npt.NDArray[np.int64]:
        s = sorted_columns(x, start, stop)
        # Sorting puts -inf first and +inf, then NaN, last: the two end columns see every non-finite
        # value, which spares the callers a separate pass over the data.
        if check_finite and not (np.isfinite(s[:, 0]).all() and np.isfinite(s[:, n - 1]).all()):
            require_finite(x)  # raises, naming the positions
        if median:
            # The average of the two middle values (one value when N is odd): exact in float64, one rounding.
            mid = s[:, lo].astype(np.float64)
            mid += s[:, hi]
            mid *= 0.5
            mid += 0.0  # -0.0 + 0.0 is +0.0: the sign of a zero never depends on how the sort ordered -0 and +0
            agg[start:stop] = mid
        else:
            kept = s[:, t : n - t].sum(axis=1, dtype=np.float64)
            kept /= n - t - t
            kept += 0.0
            agg[start:stop] = kept
        if t == 0:
            return np.zeros(n, dtype=np.int64)
        rows = x[:, start:stop]
        # Contiguous copies of the two bounds: comparing against strided columns of s is ~6x slower.
        outside = np.less(rows, np.ascontiguousarray(s[:, t]))
        np.logical_or(outside, np.greater(rows, np.ascontiguousarray(s[:, n - 1 - t])), out=outside)
        # An int32 count per block (at most 65536 columns) is ~3x faster than a bool-to-int64 sum.
        return np.asarray(np.add.reduce(outside, axis=1, dtype=np.int32), dtype=np.int64)

    counts = map_blocks(block, d, sort_block_width(n), threads)
    outside = np.asarray(np.sum(counts, axis=0, dtype=np.int64), dtype=np.int64)
    verdicts, scores = _verdicts(outside, d)
    return RobustResult(aggregate=agg, verdicts=verdicts, scores=scores)


def coordinate_median(
    x: npt.NDArray[np.float32], f: int = 0, trim: int | None = None, threads: int | None = None
) -> RobustResult:
    """Coordinate-wise median; an even N averages the two middle values. Needs N >= 2f + 1.

    Verdicts and scores use the kept range of `trim` (default f) values per end (module docstring).
    """
    x = validate_matrix(x, check_finite=False)
    t = _resolve_trim("median", x.shape[0], f, trim)
    return _coordinate_rule(x, t, True, threads, check_finite=True)


def median_vector(x: npt.NDArray[np.float32], threads: int | None = None) -> npt.NDArray[np.float32]:
    """The coordinate-wise median of an already validated matrix (no verdicts): a robust center."""
    return _coordinate_rule(x, 0, True, threads).aggregate


def trimmed_mean(
    x: npt.NDArray[np.float32], f: int = 0, trim: int | None = None, threads: int | None = None
) -> RobustResult:
    """Per coordinate, drop the `trim` (default f) smallest and largest values and average the rest.

    Needs N >= 2f + 1 and N > 2*trim. Accumulates in float64, returns float32.
    """
    x = validate_matrix(x, check_finite=False)
    t = _resolve_trim("trimmed_mean", x.shape[0], f, trim)
    return _coordinate_rule(x, t, False, threads, check_finite=True)


def _first_true(
    flat: npt.NDArray[np.float32],
    base: npt.NDArray[np.intp],
    n_pos: int,
    pred: Callable[[npt.NDArray[np.float32], npt.NDArray[np.intp]], npt.NDArray[np.bool_]],
) -> npt.NDArray[np.intp]:
    """Per sorted row (starting at flat[base]): the first position q < n_pos where pred holds, else n_pos.

    pred must be monotone along the row (false, then true). Binary lifting over all rows at once:
    log2(n_pos) gathers of one value per row instead of a pass over the whole block.
    """
    pos = np.zeros(base.shape[0], dtype=np.intp)
    step = 1 << max(0, n_pos.bit_length() - 1)
    while step:
        cand = pos + step
        probe = np.minimum(cand, n_pos) - 1
        still_false = ~pred(flat[base + probe], probe) & (cand <= n_pos)
        pos = np.where(still_false, cand, pos)
        step >>= 1
    return pos


def closest_to_median_mean(
    x: npt.NDArray[np.float32], rows: npt.NDArray[np.intp], beta: int, threads: int | None = None
) -> npt.NDArray[np.float32]:
    """Per coordinate, the mean of the beta values (of the given rows) closest to their median.

    Bulyan's second stage. Distances to the median m are |v - m| in float64 (m is exact there).
    Ties in distance go to the lower value, so the result depends on the values only. The chosen
    values are consecutive in sorted order s_0 <= ... <= s_{k-1}. Window j (positions j .. j+beta-1,
    0 <= j <= k - beta) has largest distance max(m - s_j, s_{j+beta-1} - m); the first term falls
    with j, the second grows, so the smallest one, D (the beta-th smallest distance), sits where
    they cross. The chosen window starts at max(L, R - beta), where L counts the values with
    m - v > D (below m - D) and R those with v - m < D (below m + D). All three are binary searches
    along the sorted rows; the window is summed in float64 (numpy's fixed order), rounded once.
    """
    k = len(rows)
    if not 1 <= beta <= k:
        raise RobustError(f"beta must be in [1, {k}], got {beta}")
    lo, hi = (k - 1) // 2, k // 2
    spare = k - beta
    agg = np.empty(x.shape[1], dtype=np.float32)

    def block(start: int, stop: int) -> None:
        s = sorted_columns(x, start, stop, rows)
        flat = s.reshape(-1)
        base = np.arange(s.shape[0], dtype=np.intp) * k
        m = s[:, lo].astype(np.float64)
        m += s[:, hi]
        m *= 0.5
        cross = _first_true(flat, base, spare + 1, lambda v, j: (m - v) <= (flat[base + j + beta - 1] - m))
        right_cost = np.where(cross <= spare, flat[base + np.minimum(cross, spare) + beta - 1] - m, np.inf)
        left_cost = np.where(cross >= 1, m - flat[base + np.maximum(cross - 1, 0)], np.inf)
        radius = np.minimum(left_cost, right_cost)
        below = _first_true(flat, base, spare + 1, lambda v, _: (m - v) <= radius)
        above = _first_true(flat, base, k, lambda v, _: (v - m) >= radius)
        first = base + np.maximum(below, above - beta)
        bounds = np.empty(2 * first.shape[0], dtype=np.intp)
        bounds[0::2] = first
        bounds[1::2] = first + beta
        if bounds[-1] >= flat.size:  # reduceat sums the last segment to the end anyway
            bounds = bounds[:-1]
        total = np.add.reduceat(flat, bounds, dtype=np.float64)[0::2]
        total /= beta
        total += 0.0
        agg[start:stop] = total

    map_blocks(block, x.shape[1], sort_block_width(k), threads)
    return agg
