"""Deterministic float64 reductions over an (N, d) float32 matrix: column sums, weighted sums, row norms, dots.

Every value that reaches an aggregate goes through these, never through BLAS: numpy's elementwise
ops are correctly rounded and its reductions use a fixed summation order, so the same input bytes
give the same output bytes on any machine, whatever the thread count. Column sums add the rows one
by one in ascending row order (per column block, so the accumulator stays in cache); row
reductions sum each column block with numpy's pairwise sum, then add the blocks in order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fedledger.node.robust.blocks import map_blocks

__all__ = ["column_mean", "column_sum", "row_dots", "row_sq_norms", "weighted_column_sum"]

# Columns per block for column sums: a float64 accumulator plus a scratch row of 256 KiB each.
_SUM_WIDTH = 1 << 15


def column_sum(
    x: npt.NDArray[np.float32], rows: npt.NDArray[np.intp] | None = None, threads: int | None = None
) -> npt.NDArray[np.float64]:
    """Sum of the given rows (all rows if None), added in ascending row order in float64; shape (d,)."""
    order = np.arange(x.shape[0]) if rows is None else np.sort(np.asarray(rows, dtype=np.intp))
    out = np.zeros(x.shape[1], dtype=np.float64)

    def block(start: int, stop: int) -> None:
        acc = out[start:stop]
        for i in order:
            np.add(acc, x[i, start:stop], out=acc)

    map_blocks(block, x.shape[1], _SUM_WIDTH, threads)
    return out


def column_mean(x: npt.NDArray[np.float32], threads: int | None = None) -> npt.NDArray[np.float64]:
    """Coordinate-wise mean of all rows in float64: column_sum / N."""
    out = column_sum(x, None, threads)
    out /= x.shape[0]
    return out


def weighted_column_sum(
    x: npt.NDArray[np.float32],
    weights: npt.NDArray[np.float64],
    base: npt.NDArray[np.floating] | None = None,
    base_weight: float = 0.0,
    threads: int | None = None,
) -> npt.NDArray[np.float64]:
    """base_weight * base + sum_i weights[i] * x[i] in float64, rows in ascending order; zero weights skipped."""
    w = np.asarray(weights, dtype=np.float64)
    nonzero = np.flatnonzero(w)
    out = np.zeros(x.shape[1], dtype=np.float64)

    def block(start: int, stop: int) -> None:
        acc = out[start:stop]
        scratch = np.empty(stop - start, dtype=np.float64)
        if base is not None and base_weight != 0.0:
            np.multiply(base[start:stop], np.float64(base_weight), out=acc, dtype=np.float64)
        for i in nonzero:
            np.multiply(x[i, start:stop], w[i], out=scratch, dtype=np.float64)
            np.add(acc, scratch, out=acc)

    map_blocks(block, x.shape[1], _SUM_WIDTH, threads)
    return out


def _row_block_width(n: int) -> int:
    # An (n, width) float64 scratch block of about 2 MiB.
    return max(256, min(1 << 16, (1 << 21) // (8 * max(1, n))))


def _sum_in_order(parts: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """The blocks' partial sums added left to right: a fixed order, so the bits never depend on threads."""
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def row_sq_norms(x: npt.NDArray[np.float32], threads: int | None = None) -> npt.NDArray[np.float64]:
    """Squared L2 norm of each row, in float64; shape (N,)."""

    def block(start: int, stop: int) -> npt.NDArray[np.float64]:
        sq = np.square(x[:, start:stop], dtype=np.float64)
        return np.asarray(sq.sum(axis=1), dtype=np.float64)

    return _sum_in_order(map_blocks(block, x.shape[1], _row_block_width(x.shape[0]), threads))


def row_dots(
    x: npt.NDArray[np.float32], v: npt.NDArray[np.floating], threads: int | None = None
) -> npt.NDArray[np.float64]:
    """Dot product of each row with v (shape (d,)), in float64; shape (N,)."""
    v64 = np.asarray(v, dtype=np.float64)

    def block(start: int, stop: int) -> npt.NDArray[np.float64]:
        prod = np.multiply(x[:, start:stop], v64[start:stop], dtype=np.float64)
        return np.asarray(prod.sum(axis=1), dtype=np.float64)

    return _sum_in_order(map_blocks(block, x.shape[1], _row_block_width(x.shape[0]), threads))
