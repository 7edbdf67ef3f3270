"""Flower's robust aggregation functions, called the way Flower's strategies call them, on our arrays.

Flower (`flwr`, the bench-only extra: ``pip install -e '.[bench]'``) is never a dependency: when it
is not importable, `flower_version()` is None and the bench reports the peer as unavailable.

Flower's strategies (FedMedian, FedTrimmedAvg, Krum, Bulyan) take results as a list of
``(list[ndarray], num_examples)`` tuples, one per client. The bench builds that list from the rows of
the very (N, d) float32 matrix FedLedger aggregates (views, no copies, built outside the timing) and
gives every client the same num_examples, so Flower's example-weighted Multi-Krum average is the
plain mean FedLedger computes. Parameters are matched one to one:

    median        aggregate_median(results)
    trimmed_mean  aggregate_trimmed_avg(results, proportiontocut = trim / N)   (Flower cuts int(p·N))
    krum          aggregate_krum(results, num_malicious = f, to_keep = 0)
    multi_krum    aggregate_krum(results, num_malicious = f, to_keep = m)
    bulyan        aggregate_bulyan(results, num_malicious = f, aggregation_rule = aggregate_krum, to_keep = 0)

Geometric median, centered clipping and FLTrust have no function in Flower's aggregate module, so
they are timed on the FedLedger side only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["FLOWER_RULES", "flower_rule", "flower_version", "trim_fraction"]

FLOWER_RULES = ("median", "trimmed_mean", "krum", "multi_krum", "bulyan")


def flower_version() -> str | None:
    """flwr's version if it imports (with the functions the bench calls), else None."""
    try:
        import flwr
        from flwr.server.strategy import aggregate  # noqa: F401
    except ImportError:
        return None
    return str(flwr.__version__)


def trim_fraction(trim: int, n: int) -> float:
    """The proportiontocut p for which Flower's int(p·n) is exactly trim (float rounding included)."""
    p = trim / n
    # trim / n · n can land a hair below trim (29/100·100 = 28.999…), and Flower truncates.
    while int(p * n) < trim:
        p = float(np.nextafter(p, 1.0))
    return p


def flower_rule(name: str, x: npt.NDArray[np.float32], f: int, m: int) -> tuple[Callable[[], Any], dict[str, Any]]:
    """A zero-argument call of Flower's function for rule `name` on x's rows, and its parameters.

    The call returns Flower's aggregate as a (d,) array. The results list is built here, once;
    Bulyan pops from its list, so its call gets a fresh shallow copy each time (one list of N
    references, negligible next to the aggregation).
    """
    from flwr.server.strategy import aggregate as agg

    n = x.shape[0]
    results: list[tuple[list[npt.NDArray[np.float32]], int]] = [([x[i]], 1) for i in range(n)]
    if name == "median":
        return (lambda: agg.aggregate_median(results)[0]), {}
    if name == "trimmed_mean":
        p = trim_fraction(f, n)
        return (lambda: agg.aggregate_trimmed_avg(results, p)[0]), {"proportiontocut": p}
    if name == "krum":
        return (lambda: agg.aggregate_krum(results, f, 0)[0]), {"num_malicious": f, "to_keep": 0}
    if name == "multi_krum":
        return (lambda: agg.aggregate_krum(results, f, m)[0]), {"num_malicious": f, "to_keep": m}
    if name == "bulyan":
        def run() -> Any:
            return agg.aggregate_bulyan(list(results), f, agg.aggregate_krum, to_keep=0)[0]

        return run, {"num_malicious": f, "aggregation_rule": "aggregate_krum", "to_keep": 0}
    raise ValueError(f"Flower has no function for rule {name!r}; it has {list(FLOWER_RULES)}")
