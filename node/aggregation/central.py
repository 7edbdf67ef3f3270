"""Central DP for plaintext rounds: clip every update in L2, sum, add N(0, (σC)²), divide by the count.

The aggregator draws the noise from fresh OS randomness, so the published model cannot be
recomputed bit for bit by anyone (that is the point of the noise), and the privacy of the sum
rests on the aggregator adding it honestly. Tasks that need both DP and verifiability use
distributed noise under SecAgg instead (`aggregation.secure.noise_multiplier`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedledger.abci_app.modules.federation.records import AdaptiveClip
from fedledger.node.aggregation.fedavg import WeightedUpdate, validate_updates
from fedledger.sdk.flat import layout_of, stack, unflatten
from fedledger.sdk.tensors import Tensors

__all__ = ["central_dp_mean", "next_clip"]


def central_dp_mean(updates: Sequence[WeightedUpdate], noise_multiplier: float, clip: float,
                    seed: bytes | None = None) -> Tensors:
    """The unweighted mean of the L2-clipped updates with central Gaussian noise (σ·C on the sum).

    Unweighted: with example weights one client's influence would depend on a count it declares,
    and the sensitivity C of the sum would no longer hold. seed=None is fresh OS randomness;
    a seed is for tests only.
    """
    from fedledger.sdk.dp import add_central_noise, clip_update

    ordered, _ = validate_updates(updates)
    layout = layout_of(ordered[0].tensors)
    rows = stack([u.tensors for u in ordered], layout)
    total = np.zeros(rows.shape[1], dtype=np.float64)
    for row in rows:
        clipped, _ = clip_update(row, clip)
        total += clipped
    noised = add_central_noise(total.astype(np.float32), noise_multiplier, clip, seed)
    return unflatten((noised.astype(np.float64) / len(ordered)).astype(np.float32), layout)


def next_clip(updates: Sequence[WeightedUpdate], clip: float, adaptive: AdaptiveClip, expected: int,
              seed: bytes | None = None) -> str:
    """Andrew et al. 2021's next clip norm, as the chain's decimal string (6 places, at least 1e-6).

    Each update contributes the bit "norm ≤ clip"; the centered bit sum gets N(0, σ_b²) (the
    bits' own DP noise), its mean over the `expected` clients estimates the unclipped fraction,
    and the clip moves geometrically toward the target quantile.
    """
    from fedledger.sdk.dp import bit_mean, clip_bit, l2_norm, noisy_bit_sum, update_clip_norm

    ordered, _ = validate_updates(updates)
    layout = layout_of(ordered[0].tensors)
    bits = [clip_bit(l2_norm(row), clip) for row in stack([u.tensors for u in ordered], layout)]
    estimate = bit_mean(noisy_bit_sum(bits, float(adaptive["bit_noise"]), seed), expected)
    new = update_clip_norm(clip, estimate, float(adaptive["target_quantile"]), float(adaptive["learning_rate"]))
    return f"{max(new, 1e-6):.6f}"
