"""Timing and data for `fedledger bench aggregation`: the repetition rule, ratios and the seeded inputs.

Timing rule. A measurement runs `repeats` times and reports the best (smallest) wall time, the
usual estimator on a shared machine where other processes only ever add time. A measurement
whose first run already exceeds `single_over_s` is not repeated (Flower's Bulyan, Krum at
N = 1000): its only run is reported, and flagged by `runs` having one entry.

Data. Every input comes from numpy's PCG64 seeded with SHA-256 of (seed, purpose, sizes), so the
same seed gives the same arrays in any run and both peers read the very same arrays. numpy
generators are fine here: benchmark data is not secret (masks and keys never come from them).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ConfigError

__all__ = [
    "BenchError",
    "Timing",
    "client_row",
    "dropout_set",
    "make_updates",
    "measure",
    "ratio",
    "rng_for",
]

T = TypeVar("T")


class BenchError(ConfigError):
    """The benchmark was asked for something it cannot run (bad sizes, fractions or repeat counts)."""

    error_code = "BENCH"


@dataclass(frozen=True)
class Timing(Generic[T]):
    """The runs of one measurement (seconds), the reported best, and the last run's result."""

    runs: tuple[float, ...]
    result: T

    @property
    def best(self) -> float:
        """The smallest run time."""
        return min(self.runs)

    def to_json(self) -> dict[str, Any]:
        """{"best_s": …, "runs_s": […]} rounded to the microsecond."""
        return {"best_s": round(self.best, 6), "runs_s": [round(r, 6) for r in self.runs]}


def measure(fn: Callable[[], T], repeats: int, single_over_s: float = 20.0) -> Timing[T]:
    """Run fn up to `repeats` times (once if the first run takes longer than single_over_s)."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise BenchError(f"repeats must be a positive integer, got {repeats!r}")
    runs: list[float] = []
    result: T
    while True:
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
        if len(runs) >= repeats or runs[0] > single_over_s:
            return Timing(tuple(runs), result)


def ratio(peer_s: float | None, ours_s: float | None) -> float | None:
    """peer / ours rounded to 2 decimals (how many times faster FedLedger is), None if either is missing."""
    if peer_s is None or ours_s is None or ours_s <= 0:
        return None
    return round(peer_s / ours_s, 2)


def rng_for(seed: bytes, purpose: str, *parts: int) -> np.random.Generator:
    """A numpy generator for one purpose and position, derived from the 32-byte bench seed."""
    h = hashlib.sha256(b"fedledger-bench-aggregation/" + seed + b"/" + purpose.encode())
    for part in parts:
        h.update(int(part).to_bytes(8, "big", signed=True))
    return np.random.default_rng(np.frombuffer(h.digest(), dtype=np.uint32))


def make_updates(n: int, d: int, f: int, seed: bytes) -> npt.NDArray[np.float32]:
    """(n, d) float32 client updates: n - f honest rows around a common center, f attackers last.

    Honest row i is center + s_i·noise with s_i = 0.5 + i/n, so rows differ in spread and Krum's
    scores are far apart compared to float rounding (both peers then pick the same rows).
    Attackers send −3·center + noise (a scaled sign flip). The center is 0.1·N(0, 1).
    """
    if n < 1 or d < 1 or not 0 <= f < n:
        raise BenchError(f"need n >= 1, d >= 1 and 0 <= f < n, got n={n}, d={d}, f={f}")
    rng = rng_for(seed, "robust-updates", n, d, f)
    center = rng.standard_normal(d, dtype=np.float32)
    center *= np.float32(0.1)
    x = np.empty((n, d), dtype=np.float32)
    for i in range(n):
        rng.standard_normal(d, dtype=np.float32, out=x[i])
        if i < n - f:
            x[i] *= np.float32(0.5 + i / n)
            x[i] += center
        else:
            x[i] -= np.float32(3.0) * center
    return x


def client_row(seed: bytes, n: int, d: int, index: int) -> npt.NDArray[np.float32]:
    """Client index's (d,) float32 input for a SecAgg+ round of n clients: 0.3·N(0, 1), inside clip 1."""
    rng = rng_for(seed, "secagg-input", n, d, index)
    row = rng.standard_normal(d, dtype=np.float32)
    row *= np.float32(0.3)
    return row


def dropout_set(seed: bytes, n: int, fraction: float) -> frozenset[int]:
    """round(fraction·n) clients, drawn from a seeded permutation of range(n)."""
    if not 0.0 <= fraction < 1.0:
        raise BenchError(f"dropout fraction must lie in [0, 1), got {fraction}")
    count = round(fraction * n)
    order = rng_for(seed, "dropouts", n).permutation(n)
    return frozenset(int(i) for i in order[:count])
