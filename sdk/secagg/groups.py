"""Group-wise secure aggregation: SecAgg+ inside seeded groups, one sum per group for a robust rule.

Partition. The members are shuffled by a permutation drawn from the round seed and dealt
round-robin into G = max(1, ⌊N/g⌋) groups, so every group has ⌊N/G⌋ or ⌈N/G⌉ members: never
fewer than g (when N ≥ g) and fewer than 2g. No small leftover group is formed, because a group's
sum is what the aggregator learns and a group of one would reveal an input outright. Each group
runs its own round with its own context (and so its own neighbour graph), derived from the seed
and the group's number, and its own quantizer sized for its own member count (so a smaller group
gets a finer step); `group_means` decodes each group with its own quantizer.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.graph import check_members
from fedledger.sdk.secagg.prg import check_seed, derive_seed, permutation
from fedledger.sdk.secagg.quantize import Quantizer
from fedledger.sdk.secagg.server import AggregateResult
from fedledger.sdk.secagg.simulate import SimulationResult, simulate_round

__all__ = ["GroupedResult", "group_context", "group_means", "partition", "simulate_grouped_round"]


def partition(members: Sequence[int], seed: bytes, group_size: int) -> tuple[tuple[int, ...], ...]:
    """Split members into G = max(1, ⌊N/g⌋) groups of ⌊N/G⌋ or ⌈N/G⌉; each group sorted, groups in deal order."""
    ordered = check_members(members)
    check_seed(seed, "round seed")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise SecAggError(f"group size must be a positive integer, got {group_size!r}")
    n = len(ordered)
    count = max(1, n // group_size)
    order = permutation(derive_seed(seed, "groups", n, group_size), n)
    groups: list[list[int]] = [[] for _ in range(count)]
    for position, i in enumerate(order):
        groups[position % count].append(ordered[int(i)])
    return tuple(tuple(sorted(g)) for g in groups)


def group_context(seed: bytes, group: int) -> bytes:
    """The round context (and graph seed) of group number `group`."""
    return derive_seed(seed, "group-context", group)


def group_means(
    results: Sequence[AggregateResult], quantizers: Sequence[Quantizer]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The (G, d) float32 means of the groups' sums and the (G,) number of inputs in each."""
    if len(results) != len(quantizers) or not results:
        raise SecAggError(f"need one quantizer per group result, got {len(quantizers)} for {len(results)}")
    dims = {int(r.total.shape[0]) for r in results}
    if len(dims) != 1:
        raise SecAggError(f"group sums have different lengths {sorted(dims)}")
    means = np.stack([q.dequantize_mean(r.total, r.count) for r, q in zip(results, quantizers, strict=True)])
    counts = np.array([r.count for r in results], dtype=np.int64)
    return means.astype(np.float32, copy=False), counts


@dataclass(frozen=True, eq=False)
class GroupedResult:
    """The per-group outcome of a grouped round."""

    groups: tuple[tuple[int, ...], ...]
    results: tuple[SimulationResult, ...]
    means: npt.NDArray[np.float32]
    counts: npt.NDArray[np.int64]


def simulate_grouped_round(
    inputs: npt.ArrayLike,
    clip: float,
    seed: bytes,
    group_size: int,
    dropped: Collection[int] = (),
    *,
    threshold: int | None = None,
    degree: int | None = None,
    field_bits: int = 32,
    stochastic_rounding: bool = False,
) -> GroupedResult:
    """Run SecAgg+ in every group of inputs (N, d) (row i = client i) and return the group means.

    `dropped` are clients that share keys but never post a masked input; the other options are
    those of `simulate_round`, applied to each group.
    """
    x = np.asarray(inputs)
    if x.ndim != 2:
        raise SecAggError(f"inputs must be an (N, d) array, got shape {x.shape}")
    groups = partition(list(range(x.shape[0])), seed, group_size)
    gone = set(dropped)
    results = []
    for g, members in enumerate(groups):
        results.append(
            simulate_round(
                x[list(members)],
                clip,
                group_context(seed, g),
                sorted(gone.intersection(members)),
                threshold=threshold,
                degree=degree,
                members=members,
                field_bits=field_bits,
                stochastic_rounding=stochastic_rounding,
            )
        )
    means, counts = group_means([r.aggregate for r in results], [r.quantizer for r in results])
    return GroupedResult(groups, tuple(results), means, counts)
