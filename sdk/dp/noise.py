"""Gaussian noise for update-level DP: distributed shares (under secure aggregation) and central noise.

**Distributed Gaussian** (``add_distributed_noise``). Each of the n clients of a round adds
N(0, (σC)²/n) per coordinate to its own clipped update *before masking*. The masks cancel in the
sum, the noise shares do not, so the unmasked sum carries N(0, (σC)²) per coordinate: the noise
of the central Gaussian mechanism with multiplier σ on updates of L2 norm ≤ C, while no party
(the aggregator included) ever sees an un-noised sum. Trust assumption: honest clients. A client
that skips its share, or colludes with the aggregator and subtracts its own share, removes
1/n of the variance each.

*Dropouts.* If only m of the n clients survive to the unmasking, the sum holds m shares:
variance (σC)²·m/n, i.e. an effective multiplier σ·sqrt(m/n) (``realized_noise_multiplier``).
Either accept that (and charge the realized multiplier), or over-provision: each client draws
its share for ``expected_survivors`` = m₀ ≤ n, i.e. variance (σC)²/m₀ (``distributed_std``).
Then the sum has at least (σC)² whenever at least m₀ clients survive, and the declared σ holds;
a natural m₀ is the secure-aggregation threshold, below which the round cannot unmask at all.
The price is extra noise, a factor n/m₀ in variance when everyone survives.

**Central Gaussian** (``add_central_noise``). In plaintext mode the aggregator adds N(0, (σC)²)
to the sum itself, and must be trusted with the un-noised sum.

**Randomness.** The noise must be unpredictable to everyone but the party that adds it (anyone
who can regenerate it can subtract it). By default every call draws a fresh 32-byte seed from
``os.urandom`` and expands it with AES-256-CTR (``fedledger.sdk.prg``); ``seed`` bytes exist for
tests only. Never pass a seed that another party knows (such as the round seed from a block
hash), and never the same seed twice: two clients with equal seeds add equal noise, so their
shares are no longer independent.

Floating point: noise is drawn and added in float64 and the result rounded once to float32.
The samples are continuous Gaussians on a 53-bit grid (see ``fedledger.sdk.prg``); floating-
point effects on Gaussian DP (cf. Mironov 2012 for Laplace) are not mitigated here.

Not implemented, an alternative the issue allows: distributed *discrete* Gaussian noise in the
quantized integer domain (Kairouz, Liu, Steinke 2021), i.e. integer shares from an exact sampler
(Canonne, Kamath, Steinke 2020) added after scaling and randomized rounding, with its own
accounting (the sum of discrete Gaussians is only close to a discrete Gaussian). Today noise is
added to the float update before any quantization; quantizing afterwards is post-processing and
does not weaken the guarantee.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from fedledger.sdk.dp._checks import nonnegative_int, positive_int, positive_real, seed_or_none, update_array
from fedledger.sdk.dp.errors import UpdateDPError
from fedledger.sdk.prg import Stream

__all__ = [
    "add_central_noise",
    "add_distributed_noise",
    "central_std",
    "distributed_std",
    "gaussian_noise",
    "realized_noise_multiplier",
]

_NOISE_DOMAIN = "fedledger/dp/gaussian-noise"


def gaussian_noise(size: int, std: float, seed: bytes | None = None) -> npt.NDArray[np.float64]:
    """size independent N(0, std²) draws in float64 (fresh OS seed unless a test passes bytes)."""
    n = nonnegative_int(size, "size")
    s = positive_real(std, "std", allow_zero=True)
    return Stream(seed_or_none(seed), _NOISE_DOMAIN).standard_normal(n) * s


def central_std(noise_multiplier: float, clip_norm: float) -> float:
    """σ·C: the per-coordinate noise std the sum must carry for multiplier σ and clip norm C."""
    return positive_real(noise_multiplier, "noise_multiplier") * positive_real(clip_norm, "clip_norm")


def _survivors(num_clients: int, expected_survivors: int | None) -> tuple[int, int]:
    n = positive_int(num_clients, "num_clients")
    m0 = n if expected_survivors is None else positive_int(expected_survivors, "expected_survivors")
    if m0 > n:
        raise UpdateDPError(f"expected_survivors ({m0}) cannot exceed num_clients ({n}): the full sum "
                            f"would carry less than the central noise")
    return n, m0


def distributed_std(noise_multiplier: float, clip_norm: float, num_clients: int,
                    expected_survivors: int | None = None) -> float:
    """One client's share std σC/sqrt(m₀), m₀ = expected_survivors (num_clients when None)."""
    _, m0 = _survivors(num_clients, expected_survivors)
    return central_std(noise_multiplier, clip_norm) / math.sqrt(m0)


def realized_noise_multiplier(noise_multiplier: float, survivors: int, expected_survivors: int) -> float:
    """The multiplier a sum of ``survivors`` shares actually carries: σ·sqrt(survivors / expected_survivors).

    At least σ when survivors ≥ expected_survivors; charge this value when fewer survived.
    """
    sigma = positive_real(noise_multiplier, "noise_multiplier")
    m = positive_int(survivors, "survivors")
    m0 = positive_int(expected_survivors, "expected_survivors")
    return sigma * math.sqrt(m / m0)


def _noised(x: npt.NDArray[np.float32], std: float, seed: bytes | None) -> npt.NDArray[np.float32]:
    arr = update_array(x)
    noise = gaussian_noise(arr.size, std, seed).reshape(arr.shape)
    out = (arr.astype(np.float64) + noise).astype(np.float32)
    if not np.isfinite(out).all():
        raise UpdateDPError("noised update overflowed float32; the noise std is absurdly large")
    return out


def add_distributed_noise(update: npt.NDArray[np.float32], noise_multiplier: float, clip_norm: float,
                          num_clients: int, expected_survivors: int | None = None,
                          seed: bytes | None = None) -> npt.NDArray[np.float32]:
    """A client's clipped update plus its noise share N(0, (σC)²/m₀) per coordinate, before masking.

    update must already be clipped to clip_norm (``clipping.clip_update``); m₀ = expected_survivors
    (num_clients when None; see the module docstring on dropouts). seed=None: fresh OS randomness.
    """
    return _noised(update, distributed_std(noise_multiplier, clip_norm, num_clients, expected_survivors), seed)


def add_central_noise(total: npt.NDArray[np.float32], noise_multiplier: float, clip_norm: float,
                      seed: bytes | None = None) -> npt.NDArray[np.float32]:
    """The plaintext-mode aggregator's step: the sum of clipped updates plus N(0, (σC)²) per coordinate."""
    return _noised(total, central_std(noise_multiplier, clip_norm), seed)
