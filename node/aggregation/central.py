"""Central DP for plaintext rounds: clip every update in L2, sum, add N(0, (σC)²), divide by the count.

The aggregator draws the noise from fresh OS randomness, so the published model cannot be
recomputed bit for bit by anyone (that is the point of the noise), and the privacy of the sum
rests on the aggregator adding it honestly. Tasks that need both DP and verifiability use
distributed noise under SecAgg instead (`aggregation.secure.noise_multiplier`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedledger.node.aggregation.fedavg import WeightedUpdate, validate_updates
from fedledger.node.aggregation.flat import layout_of, stack, unflatten
from fedledger.node.tensors import Tensors

__all__ = ["central_dp_mean"]


def central_dp_mean(updates: Sequence[WeightedUpdate], noise_multiplier: float, clip: float,
                    seed: bytes | None = None) -> Tensors:
    """The unweighted mean of the L2-clipped updates with central Gaussian noise (σ·C on the sum).

    Unweighted: with example weights one client's influence would depend on a count it declares,
    and the sensitivity C of the sum would no longer hold. seed=None is fresh OS randomness;
    a seed is for tests only.
    """
    from fedledger.node.dp import add_central_noise, clip_update

    ordered, _ = validate_updates(updates)
    layout = layout_of(ordered[0].tensors)
    rows = stack([u.tensors for u in ordered], layout)
    total = np.zeros(rows.shape[1], dtype=np.float64)
    for row in rows:
        clipped, _ = clip_update(row, clip)
        total += clipped
    noised = add_central_noise(total.astype(np.float32), noise_multiplier, clip, seed)
    return unflatten((noised.astype(np.float64) / len(ordered)).astype(np.float32), layout)
