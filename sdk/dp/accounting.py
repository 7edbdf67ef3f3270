"""Update-level DP rounds in the chain's terms: the (noise_multiplier, sample_rate, steps) a contribution declares.

One round of update-level DP is one application of the Gaussian mechanism to the sum of clipped
client updates: sensitivity C (one client's update, add/remove adjacency), noise std σC, so
noise multiplier σ. The chain's accountant (``fedledger.abci_app.accountant``) charges exactly
that as ``Mechanism(noise_multiplier=σ, sample_rate=q, steps=1)`` per contribution and composes
it onto the participant's stored RDP curve, so a client declares, with each commit::

    {"noise_multiplier": "1.1", "sample_rate": "1", "steps": 1, "clip_norm": "0.5"}

(``declared_dp``; decimal strings in the chain's canonical form, ``clip_norm`` recorded for audit).
This module only translates; the ε arithmetic is the chain's own (``plan_charge`` reuses it).

**The privacy unit is the client** (its whole local dataset), unlike DP-SGD (``sdk/ml/dpsgd.py``)
whose unit is one example. A contribution tx declares one mechanism; do not mix the two units in
one participant's history without deciding which guarantee the task's budget means.

**Sample rate.** Amplification by subsampling (q < 1) is valid only if each client's
participation is a Poisson draw with rate q *that stays secret*. FedLedger rounds draw
participants publicly from the block hash and record them on chain, so the adversary knows who
took part: declare q = 1 (the default here) unless a round really samples secretly.

**Which σ.** With distributed noise, declare the multiplier the sum is guaranteed to carry
(σ when at least ``expected_survivors`` clients survive; ``noise.realized_noise_multiplier``
otherwise). With adaptive clipping, declare the combined z and add noise with z_Δ
(``clipping.update_noise_multiplier``).

Rounding is conservative, as ``Mechanism.of`` does it: σ is rounded *down* to 6 decimal places
and q *up* to 12, so the declaration never claims more privacy than was run. Floats are taken at
their exact binary value before that rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction

from fedledger.abci_app.accountant import ZERO_RDP, AccountantError, Charge, Mechanism, canonical_str, charge
from fedledger.abci_app.accountant.decimals import ceil_scaled
from fedledger.sdk.dp.errors import UpdateDPError

__all__ = ["CLIP_PLACES", "Number", "declared_dp", "plan_charge", "round_mechanism"]

Number = Decimal | Fraction | int | float | str
"""What the adapter accepts for σ, q and C: floats at their exact binary value, strings as decimals."""

#: The recorded clip norm is rounded UP to this many places (a larger recorded bound is still true).
CLIP_PLACES = 12
# The privacy module refuses clip norms above this (abci_app/modules/privacy/budget.py).
_MAX_CLIP = Decimal(10**6)


def _exact(value: object, what: str) -> Decimal | Fraction | int | str:
    """Floats become exact Fractions (the accountant refuses floats); other numbers pass to the accountant."""
    if isinstance(value, bool):
        raise UpdateDPError(f"{what} must be a number, not bool")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UpdateDPError(f"{what} must be finite, got {value!r}")
        return Fraction(value)
    if isinstance(value, Decimal | Fraction | int | str):
        return value
    raise UpdateDPError(f"{what} must be a Decimal, Fraction, int, float or decimal string, "
                        f"not {type(value).__name__}")


def round_mechanism(noise_multiplier: Number, sample_rate: Number = 1, rounds: int = 1) -> Mechanism:
    """The chain's Mechanism for ``rounds`` rounds of update-level DP at multiplier σ and client rate q.

    One contribution covers one round, so ``rounds`` is 1 except when planning ahead. Raises
    UpdateDPError for values the chain would refuse (σ outside [0.1, 10^4], q outside (0, 1]).
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise UpdateDPError(f"rounds must be a positive int, got {rounds!r}")
    try:
        return Mechanism.of(_exact(noise_multiplier, "noise_multiplier"), _exact(sample_rate, "sample_rate"), rounds)
    except AccountantError as exc:
        raise UpdateDPError(f"the chain would refuse this mechanism: {exc}") from None


def _clip_text(clip_norm: Number) -> str:
    value = _exact(clip_norm, "clip_norm")
    try:
        exact = value if isinstance(value, Fraction) else Fraction(Decimal(value))
    except (ArithmeticError, ValueError):
        raise UpdateDPError(f"clip_norm {clip_norm!r} is not a decimal number") from None
    if not 0 < exact <= _MAX_CLIP:
        raise UpdateDPError(f"clip_norm must be in (0, {_MAX_CLIP}], got {clip_norm!r}")
    return canonical_str(Decimal(ceil_scaled(exact, CLIP_PLACES)).scaleb(-CLIP_PLACES))


def declared_dp(noise_multiplier: Number, clip_norm: Number, sample_rate: Number = 1,
                rounds: int = 1) -> dict[str, object]:
    """The ``dp`` body of a ``commit_contribution`` tx for update-level DP (chain-canonical strings).

    ``{"noise_multiplier", "sample_rate", "steps"}`` from ``round_mechanism`` plus ``clip_norm``
    rounded up to 12 places; the chain's ``parse_mechanism`` accepts it as is.
    """
    return {**round_mechanism(noise_multiplier, sample_rate, rounds).to_json(), "clip_norm": _clip_text(clip_norm)}


def plan_charge(mechanism: Mechanism, delta: Decimal | str, history: Sequence[Decimal] = ZERO_RDP) -> Charge:
    """What the chain will compute for this mechanism on a participant's stored RDP history.

    A thin call of the chain's own ``charge`` (no second accountant): ``.epsilon_micro`` is the
    participant's total ε afterwards in micro-ε, ``.rdp`` the curve the chain stores.
    """
    try:
        return charge(history, mechanism, delta)
    except AccountantError as exc:
        raise UpdateDPError(str(exc)) from None
