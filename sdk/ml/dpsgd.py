"""DP-SGD (Abadi et al. 2016) for local training: Poisson sampling, per-example clipping, Gaussian noise."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from fedledger.abci_app.accountant import (
    MAX_NOISE_MULTIPLIER,
    MAX_NOISE_PLACES,
    MAX_RATE_PLACES,
    MAX_STEPS,
    MIN_NOISE_MULTIPLIER,
    AccountantError,
    Mechanism,
    canonical_str,
)
from fedledger.abci_app.accountant.decimals import ceil_scaled, to_decimal
from fedledger.abci_app.errors import ConfigError

__all__ = [
    "DEFAULT_RATE_DECIMALS",
    "DPConfig",
    "DPError",
    "DPPlan",
    "clip_and_sum",
    "dp_sgd_step",
    "fresh_seed",
    "per_example_gradients",
    "run_dp_sgd",
]

# The default sample rate batch_size / n is rounded UP to this many decimals so the declared string stays short.
DEFAULT_RATE_DECIMALS = 6
# The clip norm is not part of the chain's mechanism but is recorded for audit; same spelling rules as q.
_CLIP_PLACES = MAX_RATE_PLACES

Grads = dict[str, torch.Tensor]


class DPError(ConfigError):
    """A DP-SGD configuration is invalid or cannot be resolved for the given data."""

    error_code = "DP_SETTINGS"


def _decimal(value: object, what: str, places: int) -> Decimal:
    """Parse a decimal string field of DPConfig with the accountant's rules (exponents allowed, floats not)."""
    if not isinstance(value, str):
        raise DPError(f"{what} must be a decimal string such as \"1.1\", got {type(value).__name__}")
    try:
        return to_decimal(value, what, places)
    except AccountantError as exc:
        raise DPError(str(exc)) from None


def _noise(value: object) -> Decimal:
    """σ as the chain accepts it: at most 6 places, within [MIN_NOISE_MULTIPLIER, MAX_NOISE_MULTIPLIER]."""
    sigma = _decimal(value, "noise_multiplier", MAX_NOISE_PLACES)
    if not MIN_NOISE_MULTIPLIER <= sigma <= MAX_NOISE_MULTIPLIER:
        raise DPError(f"noise_multiplier must be in [{MIN_NOISE_MULTIPLIER}, {MAX_NOISE_MULTIPLIER}] "
                      f"(the chain refuses anything else), got {value!r}")
    return sigma


def _rate(value: object) -> Decimal:
    """q as the chain accepts it: at most 12 places, in (0, 1]."""
    rate = _decimal(value, "sample_rate", MAX_RATE_PLACES)
    if not 0 < rate <= 1:
        raise DPError(f"sample_rate must be in (0, 1], got {value!r}")
    return rate


def _clip(value: object) -> Decimal:
    """C: a positive decimal with at most 12 places."""
    clip = _decimal(value, "clip_norm", _CLIP_PLACES)
    if not clip > 0:
        raise DPError(f"clip_norm must be > 0, got {value!r}")
    return clip


def _positive_int(value: object, what: str, limit: int | None = None) -> int:
    """Return value if it is a positive int (bools refused) not above limit, else raise DPError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DPError(f"{what} must be a positive int, got {value!r}")
    if limit is not None and value > limit:
        raise DPError(f"{what} must be at most {limit}, got {value}")
    return value


@dataclass(frozen=True)
class DPPlan:
    """The resolved run: exact σ, q, C and step count. Low level: σ is not range-checked until mechanism()."""

    noise_multiplier: Decimal
    sample_rate: Decimal
    clip_norm: Decimal
    steps: int
    steps_per_epoch: int  # used only to decide which steps count as the "final epoch" for the reported loss

    def mechanism(self) -> dict[str, object]:
        """The chain's canonical mechanism JSON {noise_multiplier, sample_rate, steps} (no clip_norm, no floats).

        Built through the accountant's Mechanism, so Mechanism.parse accepts it and it denotes exactly
        the σ, q and T that run_dp_sgd executes; raises DPError for a plan the chain would refuse.
        """
        try:
            return Mechanism(self.noise_multiplier, self.sample_rate, self.steps).to_json()
        except AccountantError as exc:
            raise DPError(f"this plan cannot be declared on chain: {exc}") from None

    @property
    def clip_norm_text(self) -> str:
        """C in canonical plain form (recorded for audit next to the mechanism; not part of the accounting)."""
        return canonical_str(self.clip_norm)


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD settings a client declares; decimals are strings so the declared values are exact.

    noise_multiplier: σ (noise std is σ·C per coordinate), in [0.1, 10^4] with at most 6 places as
    the chain demands; sample_rate: Poisson rate q, by default batch_size / n rounded UP to 6
    decimals; clip_norm: C, the per-example L2 bound over all parameters jointly; steps: T, by
    default epochs · round(1/q). Exponents ("1e-2") are accepted and written out canonically.
    """

    noise_multiplier: str
    sample_rate: str | None = None
    clip_norm: str = "1.0"
    steps: int | None = None

    def __post_init__(self) -> None:
        _noise(self.noise_multiplier)
        if self.sample_rate is not None:
            _rate(self.sample_rate)
        _clip(self.clip_norm)
        if self.steps is not None:
            _positive_int(self.steps, "steps", MAX_STEPS)

    def plan(self, n: int, batch_size: int, epochs: int) -> DPPlan:
        """Resolve the defaults for a client with n examples, training epochs epochs at batch_size."""
        _positive_int(n, "number of examples")
        _positive_int(batch_size, "batch_size")
        _positive_int(epochs, "epochs")
        if self.sample_rate is not None:
            rate = _rate(self.sample_rate)
        else:
            units = ceil_scaled(Fraction(batch_size, n), DEFAULT_RATE_DECIMALS)
            rate = min(Decimal(1), Decimal(units).scaleb(-DEFAULT_RATE_DECIMALS))
        # round(1/q), ties to even; q <= 1 makes this at least 1.
        per_epoch = max(1, round(1 / Fraction(rate)))
        steps = self.steps if self.steps is not None else epochs * per_epoch
        _positive_int(steps, "steps", MAX_STEPS)
        return DPPlan(noise_multiplier=_noise(self.noise_multiplier), sample_rate=rate,
                      clip_norm=_clip(self.clip_norm), steps=steps, steps_per_epoch=min(per_epoch, steps))

    def mechanism(self, n: int, batch_size: int, epochs: int) -> dict[str, object]:
        """The exact mechanism dict a tx declares for this run: {noise_multiplier, sample_rate, steps}."""
        return self.plan(n, batch_size, epochs).mechanism()


def fresh_seed() -> int:
    """A secret 63-bit seed from the OS. DP noise only protects data if its seed is unknown to others."""
    return secrets.randbits(63)


def per_example_gradients(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[Grads, torch.Tensor]:
    """Gradients of the cross-entropy of each example separately, and each example's loss.

    Returns ({parameter name: tensor of shape (B, *param.shape)}, losses of shape (B,)), computed with
    torch.func (vmap over grad of a functional call), so there is no Python loop over examples. Layers
    that mix examples (BatchNorm) would break both this and the privacy analysis; the registered
    models have none.
    """
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    buffers = {name: b.detach() for name, b in model.named_buffers()}
    if X.shape[0] == 0:
        empty = {name: torch.zeros((0, *p.shape), dtype=p.dtype) for name, p in params.items()}
        return empty, torch.zeros(0, dtype=X.dtype)

    def loss_one(p: Grads, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        loss = nn.functional.cross_entropy(logits, target.unsqueeze(0))
        return loss, loss.detach()

    grads, losses = vmap(grad(loss_one, has_aux=True), in_dims=(None, 0, 0))(params, X, y)
    return grads, losses


def clip_and_sum(grads: Grads, clip_norm: float) -> tuple[Grads, torch.Tensor]:
    """Scale each example's gradient to L2 norm at most clip_norm (jointly over all parameters) and sum them.

    Returns (summed clipped gradient per parameter, each example's norm before clipping).
    """
    names = list(grads)
    batch = grads[names[0]].shape[0]
    if batch == 0:
        return {name: torch.zeros(g.shape[1:], dtype=g.dtype) for name, g in grads.items()}, torch.zeros(0)
    sq = torch.stack([g.reshape(batch, -1).pow(2).sum(dim=1) for g in grads.values()]).sum(dim=0)
    norms = sq.sqrt()
    # factor = min(1, C / norm); clamping the denominator at C avoids dividing by a zero norm.
    factor = clip_norm / torch.clamp(norms, min=clip_norm)
    summed = {name: torch.einsum("b,b...->...", factor, g) for name, g in grads.items()}
    return summed, norms


def dp_sgd_step(model: nn.Module, X: torch.Tensor, y: torch.Tensor, lr: float, noise_multiplier: float,
                clip_norm: float, expected_batch: float, generator: torch.Generator) -> torch.Tensor:
    """One DP-SGD update on the (Poisson-sampled, possibly empty) batch X, y; returns its per-example losses.

    The update is θ ← θ - lr · (Σ clip(g_i) + N(0, σ²C² I)) / expected_batch. Dividing by the expected
    batch size q·n rather than the drawn size keeps the estimate unbiased and the divisor data-independent,
    so the noise scale relative to one example's contribution is exactly what the accountant assumes.
    An empty sample still gets its noise, as the analysis of the subsampled Gaussian mechanism requires.
    (The divisor depends on n, which a contribution publishes anyway as num_examples; it is a public
    post-processing constant here, as in Opacus.)
    """
    grads, losses = per_example_gradients(model, X, y)
    summed, _ = clip_and_sum(grads, clip_norm)
    std = noise_multiplier * clip_norm
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            param.sub_((summed[name] + std * noise) * (lr / expected_batch))
    return losses


def run_dp_sgd(model: nn.Module, X: torch.Tensor, y: torch.Tensor, plan: DPPlan, lr: float, seed: int,
               progress: Callable[[int, int], None] | None = None) -> float:
    """Train model in place with exactly plan.steps DP-SGD steps; return the final epoch's mean example loss.

    Each step draws every example independently with probability q from a torch.Generator seeded with
    seed (which also draws the noise). The "final epoch" is the last plan.steps_per_epoch steps; if they
    drew no example, the loss of the trained model on all of X is reported instead. The loss is computed
    on private data without noise: it is for local logs only and must never be published.
    """
    n = int(X.shape[0])
    rate = float(plan.sample_rate)
    sigma = float(plan.noise_multiplier)
    clip = float(plan.clip_norm)
    expected_batch = rate * n
    generator = torch.Generator().manual_seed(seed)
    tail_from = plan.steps - plan.steps_per_epoch
    tail_loss = 0.0
    tail_count = 0
    model.train()
    for step in range(plan.steps):
        # float64 uniforms so the comparison with q is as exact as the declared decimal allows.
        mask = torch.rand(n, generator=generator, dtype=torch.float64) < rate
        idx = torch.nonzero(mask, as_tuple=True)[0]
        losses = dp_sgd_step(model, X[idx], y[idx], lr, sigma, clip, expected_batch, generator)
        if step >= tail_from:
            tail_loss += float(losses.sum().item())
            tail_count += int(losses.shape[0])
        if progress is not None:
            progress(step + 1, plan.steps)
    if tail_count:
        return tail_loss / tail_count
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(X), y)
    return float(loss.item())
