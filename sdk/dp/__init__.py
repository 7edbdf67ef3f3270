"""Update-level differential privacy: clip a client's whole update, add Gaussian noise, declare it to the chain.

Distinct from ``fedledger.sdk.ml.dpsgd`` (DP-SGD inside local training, per-example). Pure numpy;
no torch and no chain imports beyond the shared accountant (``accounting``).

* ``clipping``: L2 clipping of updates, adaptive clipping (Andrew et al. 2021);
* ``noise``: distributed Gaussian shares (before secure-aggregation masking) and central noise;
* ``accounting``: the (noise_multiplier, sample_rate, steps) the chain's accountant debits.
"""

from fedledger.sdk.dp.accounting import declared_dp, plan_charge, round_mechanism
from fedledger.sdk.dp.clipping import (
    AdaptiveClipState,
    bit_mean,
    clip_bit,
    clip_tensors,
    clip_update,
    l2_norm,
    noisy_bit_sum,
    update_clip_norm,
    update_noise_multiplier,
)
from fedledger.sdk.dp.errors import UpdateDPError
from fedledger.sdk.dp.noise import (
    add_central_noise,
    add_distributed_noise,
    central_std,
    distributed_std,
    gaussian_noise,
    realized_noise_multiplier,
)

__all__ = [
    "AdaptiveClipState",
    "UpdateDPError",
    "add_central_noise",
    "add_distributed_noise",
    "bit_mean",
    "central_std",
    "clip_bit",
    "clip_tensors",
    "clip_update",
    "declared_dp",
    "distributed_std",
    "gaussian_noise",
    "l2_norm",
    "noisy_bit_sum",
    "plan_charge",
    "realized_noise_multiplier",
    "round_mechanism",
    "update_clip_norm",
    "update_noise_multiplier",
]
