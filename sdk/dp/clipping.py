"""Update-level L2 clipping, and adaptive clipping toward a target quantile (Andrew et al. 2021).

This clips a client's *whole model update* once per round (the privacy unit is the client);
``sdk/ml/dpsgd.py`` clips *per-example gradients* inside local training (the unit is one
example). Both can be used together; they protect different units and are accounted separately.

**Fixed clipping.** ``clip_update(x, C)`` scales x to L2 norm at most C and returns the norm it had.
Norms are accumulated in float64 with numpy's pairwise sum (not BLAS, whose summation order may
depend on the thread count), so they are reproducible. The float32 result of ``x · C/‖x‖`` can
round to a norm a few ulps above C; the factor is then shrunk by a relative 2^-23 (about one
float32 ulp) at a time until the float64 norm is at most C, so the sensitivity bound the
accountant relies on holds exactly.

**Adaptive clipping** ("Differentially Private Learning with Adaptive Clipping", Andrew, Thakkar,
McMahan, Ramaswamy, NeurIPS 2021). The server keeps the clip norm C, a target quantile γ (the
fraction of updates that should be unclipped) and a learning rate η. Each round:

1. every client reports ``b_i = [‖Δ_i‖ ≤ C]`` (``clip_bit``), computed against this round's C
   from the norm ``clip_update`` returns;
2. the bits are summed *centered*, as ``Σ (b_i − ½)``, with Gaussian noise N(0, σ_b²) added
   (``noisy_bit_sum``). Centering makes adding or removing one client move the sum by at most ½,
   so the count query is a Gaussian mechanism with noise multiplier σ_b / ½ = 2σ_b;
3. the server estimates ``b̄ = ½ + noisy_sum / m`` with m the *expected* (public) number of
   clients per round (``bit_mean``), never the observed count, which is itself private;
4. and updates geometrically ``C ← C · exp(−η (b̄ − γ))`` (``update_clip_norm``): too many
   unclipped updates (b̄ > γ) shrink C, too few grow it.

**Privacy accounting.** One round releases two Gaussian queries on the same clients: the noisy
update sum (multiplier z_Δ, noise std z_Δ·C) and the noisy bit count (multiplier 2σ_b). Their
RDP curves add, and α/(2z_Δ²) + α/(2(2σ_b)²) = α/(2z²) with

    z^-2 = z_Δ^-2 + (2σ_b)^-2,   i.e.   z_Δ = (z^-2 − (2σ_b)^-2)^(-1/2)   (``update_noise_multiplier``).

So to have the round cost what one Gaussian mechanism of multiplier z costs, *declare z* to the
chain's accountant (``fedledger.sdk.dp.accounting``) and *add noise with z_Δ ≥ z* to the
updates. This requires 2σ_b > z; Andrew et al. suggest σ_b = m/20, which makes z_Δ barely
larger than z for any sensible m. Under secure aggregation the centered bit can travel as one
extra coordinate of the masked vector with distributed noise shares (``noise.distributed_std``
with σ·C replaced by σ_b).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from fedledger.sdk.dp._checks import finite_real, positive_int, positive_real, seed_or_none, update_array
from fedledger.sdk.dp.errors import UpdateDPError
from fedledger.sdk.prg import Stream

__all__ = [
    "AdaptiveClipState",
    "bit_mean",
    "clip_bit",
    "clip_tensors",
    "clip_update",
    "l2_norm",
    "noisy_bit_sum",
    "update_clip_norm",
    "update_noise_multiplier",
]

# Shrinking by (1 − 2^-23) moves a float32 value by at most about one ulp: the smallest step that
# changes the rounded result, so the clipped norm ends up as close to C as float32 allows.
_SHRINK = 1.0 - 2.0**-23
_MAX_SHRINKS = 64
_BIT_NOISE_DOMAIN = "fedledger/dp/adaptive-clip-bit-noise"


def l2_norm(x: npt.NDArray[np.float32]) -> float:
    """The L2 norm of a float32 array, accumulated in float64 (numpy's pairwise sum: reproducible)."""
    wide = update_array(x).astype(np.float64).ravel()
    return math.sqrt(float(np.sum(wide * wide)))


def _scaled(parts: Sequence[npt.NDArray[np.float32]], norm: float, clip_norm: float
            ) -> list[npt.NDArray[np.float32]]:
    """Each part times clip_norm / norm, in float32, shrunk until the joint float64 norm is at most clip_norm."""
    factor = clip_norm / norm
    for _ in range(_MAX_SHRINKS):
        out = [(p.astype(np.float64) * factor).astype(np.float32) for p in parts]
        sq = math.fsum(float(np.sum(np.square(o.astype(np.float64)))) for o in out)
        if math.sqrt(sq) <= clip_norm:
            return out
        factor *= _SHRINK
    raise AssertionError("clipping did not converge")  # unreachable: each shrink removes ~1 ulp of excess


def clip_update(x: npt.NDArray[np.float32], clip_norm: float) -> tuple[npt.NDArray[np.float32], float]:
    """Scale a float32 update to L2 norm at most clip_norm; return (clipped copy, norm before clipping).

    An update already within the bound comes back as an unchanged copy (bit-identical). The
    returned norm is what ``clip_bit`` needs for adaptive clipping.
    """
    arr = update_array(x)
    c = positive_real(clip_norm, "clip_norm")
    norm = l2_norm(arr)
    if norm <= c:
        return arr.copy(), norm
    return _scaled([arr], norm, c)[0], norm


def clip_tensors(tensors: Mapping[str, npt.NDArray[np.float32]], clip_norm: float
                 ) -> tuple[dict[str, npt.NDArray[np.float32]], float]:
    """Clip named tensors jointly (one L2 norm over all of them, names in sorted order); return (clipped, norm)."""
    if not isinstance(tensors, Mapping) or not tensors:
        raise UpdateDPError("tensors must be a non-empty mapping of name -> float32 array")
    c = positive_real(clip_norm, "clip_norm")
    names = sorted(tensors)
    parts = [update_array(tensors[n], f"tensor {n!r}") for n in names]
    norm = math.sqrt(math.fsum(float(np.sum(np.square(p.astype(np.float64)))) for p in parts))
    if norm <= c:
        return {n: p.copy() for n, p in zip(names, parts, strict=True)}, norm
    return dict(zip(names, _scaled(parts, norm, c), strict=True)), norm


def clip_bit(update_norm: float, clip_norm: float) -> int:
    """The client's adaptive-clipping report: 1 if its update norm is at most the round's clip norm, else 0."""
    norm = positive_real(update_norm, "update_norm", allow_zero=True)
    return 1 if norm <= positive_real(clip_norm, "clip_norm") else 0


def noisy_bit_sum(bits: Sequence[int] | npt.NDArray[np.integer], bit_noise_std: float,
                  seed: bytes | None = None) -> float:
    """Σ (b_i − ½) + N(0, σ_b²): the private count statistic (sensitivity ½; see the module docstring).

    seed=None draws the noise from a fresh OS seed, as production must; pass bytes only in tests.
    """
    values = np.asarray(bits)
    if values.ndim != 1 or not np.isin(values, (0, 1)).all():
        raise UpdateDPError("bits must be a 1-D sequence of 0/1 values")
    std = positive_real(bit_noise_std, "bit_noise_std", allow_zero=True)
    noise = float(Stream(seed_or_none(seed), _BIT_NOISE_DOMAIN).standard_normal(1)[0])
    return float(np.sum(values.astype(np.float64)) - 0.5 * values.shape[0]) + std * noise


def bit_mean(noisy_sum: float, expected_clients: int) -> float:
    """The estimated unclipped fraction b̄ = ½ + noisy_sum / m, m the public expected client count per round."""
    return 0.5 + finite_real(noisy_sum, "noisy_sum") / positive_int(expected_clients, "expected_clients")


def _quantile(value: object) -> float:
    q = positive_real(value, "target_quantile", allow_zero=True)
    if q > 1:
        raise UpdateDPError(f"target_quantile must be in [0, 1], got {value!r}")
    return q


def update_clip_norm(clip_norm: float, bit_mean_estimate: float, target_quantile: float,
                     learning_rate: float) -> float:
    """The geometric update C · exp(−η (b̄ − γ)) of Andrew et al. 2021."""
    c = positive_real(clip_norm, "clip_norm")
    estimate = finite_real(bit_mean_estimate, "bit_mean_estimate")
    eta = positive_real(learning_rate, "learning_rate")
    try:
        new = c * math.exp(-eta * (estimate - _quantile(target_quantile)))
    except OverflowError:
        new = math.inf
    if not math.isfinite(new) or new <= 0:
        raise UpdateDPError(f"the clip norm update left the positive finite range ({new!r}); lower learning_rate")
    return new


def update_noise_multiplier(noise_multiplier: float, bit_noise_std: float) -> float:
    """z_Δ = (z^-2 − (2σ_b)^-2)^(-1/2): the update noise multiplier that makes a round cost what z costs.

    z is the multiplier declared to the accountant, σ_b the std of the noise on the centered bit
    sum. Raises UpdateDPError unless 2σ_b > z (otherwise the bit count alone costs more than z).
    """
    z = positive_real(noise_multiplier, "noise_multiplier")
    sb = positive_real(bit_noise_std, "bit_noise_std")
    rest = z**-2 - (2.0 * sb) ** -2
    if rest <= 0:
        raise UpdateDPError(f"bit_noise_std {sb} is too small: adaptive clipping needs 2·σ_b > z = {z} "
                            f"(Andrew et al. suggest σ_b = expected_clients / 20)")
    return 1.0 / math.sqrt(rest)


@dataclass(frozen=True)
class AdaptiveClipState:
    """The server's adaptive-clipping state: C, γ, η, σ_b and the public expected clients per round m."""

    clip_norm: float
    target_quantile: float
    learning_rate: float
    bit_noise_std: float
    expected_clients: int

    def __post_init__(self) -> None:
        positive_real(self.clip_norm, "clip_norm")
        _quantile(self.target_quantile)
        positive_real(self.learning_rate, "learning_rate")
        positive_real(self.bit_noise_std, "bit_noise_std", allow_zero=True)
        positive_int(self.expected_clients, "expected_clients")

    def step(self, bits: Sequence[int] | npt.NDArray[np.integer], seed: bytes | None = None) -> AdaptiveClipState:
        """The state after one round in which the clients reported bits (noise drawn from seed, fresh if None)."""
        estimate = bit_mean(noisy_bit_sum(bits, self.bit_noise_std, seed), self.expected_clients)
        new = update_clip_norm(self.clip_norm, estimate, self.target_quantile, self.learning_rate)
        return replace(self, clip_norm=new)

    def update_noise_multiplier(self, noise_multiplier: float) -> float:
        """z_Δ for the declared multiplier z under this state's σ_b (see ``update_noise_multiplier``)."""
        return update_noise_multiplier(noise_multiplier, self.bit_noise_std)
