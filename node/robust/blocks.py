"""Column blocks: split d into cache-sized pieces and run them on a few threads, results in block order.

The split depends only on d and the block width, never on the thread count, and callers combine
the per-block results in block order. So the thread count changes the speed, never a bit of a
result. numpy releases the GIL inside its sorts, ufuncs and BLAS calls, which is what the threads
run in parallel.

BLAS calls inside the blocks run single-threaded (single_threaded_blas): the blocks already use
the cores, and OpenBLAS's own threads on top of them, on a machine shared with other work,
measured 3-4x slower (a float64 Gram of 100 x 1e6: 2.8 s with OpenBLAS's 2 threads against 0.7 s
with one, under load). The limit uses threadpoolctl when it is installed (it comes with
scikit-learn); without it BLAS keeps its own setting, which changes the speed, never a result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["column_blocks", "default_threads", "iter_blocks", "map_blocks", "single_threaded_blas", "sort_block_width"]

T = TypeVar("T")

_MAX_THREADS = 8


def default_threads() -> int:
    """The CPU count, at most 8 (past that, memory bandwidth and not cores limits these passes)."""
    return max(1, min(os.cpu_count() or 1, _MAX_THREADS))


def column_blocks(d: int, width: int) -> list[tuple[int, int]]:
    """Half-open column ranges [start, stop) of at most width columns that cover range(d) in order."""
    if width < 1:
        raise ValueError(f"block width must be >= 1, got {width}")
    return [(start, min(start + width, d)) for start in range(0, d, width)]


def sort_block_width(n: int, bytes_per_value: int = 4, target_bytes: int = 1 << 21) -> int:
    """Columns per block so that an (n, width) block of this value size is about target_bytes (2 MiB).

    Measured on the 2-core reference machine: a transposed block of ~1.6-3 MB sorts fastest;
    much smaller blocks pay per-call overhead, much larger ones fall out of cache.
    """
    return max(64, min(1 << 16, target_bytes // max(1, n * bytes_per_value)))


def iter_blocks(fn: Callable[[int, int], T], d: int, width: int, threads: int | None = None) -> Iterator[T]:
    """fn(start, stop) for each column block, computed on up to `threads` threads, yielded in block order.

    Consuming the results as they come (e.g. adding them up) keeps only a few of them in memory.
    """
    blocks = column_blocks(d, width)
    workers = min(len(blocks), default_threads() if threads is None else threads)
    if workers <= 1:
        for start, stop in blocks:
            yield fn(start, stop)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(lambda block: fn(block[0], block[1]), blocks)


def map_blocks(fn: Callable[[int, int], T], d: int, width: int, threads: int | None = None) -> list[T]:
    """[fn(start, stop) for each column block], computed on up to `threads` threads, in block order."""
    return list(iter_blocks(fn, d, width, threads))


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (process-wide, restored on exit), if threadpoolctl is present."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only the speed depends on it
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
