"""The declared DP mechanism (Poisson-subsampled Gaussian, T steps) and its one canonical tx-body form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from fedledger.abci_app.accountant.decimals import (
    AccountantError,
    canonical_str,
    ceil_scaled,
    parse_canonical,
    to_decimal,
)

__all__ = [
    "MAX_NOISE_MULTIPLIER",
    "MAX_NOISE_PLACES",
    "MAX_RATE_PLACES",
    "MAX_STEPS",
    "MIN_NOISE_MULTIPLIER",
    "Mechanism",
]

# Bounds are part of consensus. σ below 0.1 gives no meaningful privacy and would push
# exp(k(k-1)/(2σ²)) past the context's exponent range; above 10^4 nobody trains anything.
MIN_NOISE_MULTIPLIER = Decimal("0.1")
MAX_NOISE_MULTIPLIER = Decimal(10_000)
MAX_NOISE_PLACES = 6
# q has at most 12 places, so its smallest value is 1e-12; a client whose q = batch/N is not a
# short decimal rounds it UP (Mechanism.of does), which only overstates the privacy cost.
MAX_RATE_PLACES = 12
MAX_STEPS = 10**9

_FIELDS = ("noise_multiplier", "sample_rate", "steps")


def _check_noise(sigma: Decimal) -> None:
    if not MIN_NOISE_MULTIPLIER <= sigma <= MAX_NOISE_MULTIPLIER:
        raise AccountantError(f"noise_multiplier must be in [{MIN_NOISE_MULTIPLIER}, {MAX_NOISE_MULTIPLIER}], "
                              f"got {canonical_str(sigma)}")


def _check_rate(q: Decimal) -> None:
    if not 0 < q <= 1:
        raise AccountantError(f"sample_rate must be in (0, 1], got {canonical_str(q)}")


def _check_steps(steps: object) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise AccountantError(f"steps must be an integer, not {type(steps).__name__}")
    if not 1 <= steps <= MAX_STEPS:
        raise AccountantError(f"steps must be in [1, {MAX_STEPS}], got {steps}")
    return steps


def _exact(value: object, name: str) -> Fraction:
    """An API caller's number as an exact rational (floats refused, as everywhere in the accountant)."""
    if isinstance(value, Fraction):
        return value
    return Fraction(to_decimal(value, name, 40))


@dataclass(frozen=True)
class Mechanism:
    """``steps`` applications of the Gaussian mechanism with noise multiplier σ on a Poisson sample of rate q.

    Instances are always valid and canonical (trailing zeros dropped), so equal mechanisms compare,
    hash and serialize identically. Build one from a tx body with ``parse`` or from planning
    numbers with ``of``.
    """

    noise_multiplier: Decimal
    sample_rate: Decimal
    steps: int

    def __post_init__(self) -> None:
        if not isinstance(self.noise_multiplier, Decimal) or not isinstance(self.sample_rate, Decimal):
            raise AccountantError("Mechanism fields must be Decimals; use Mechanism.of for other numbers")
        sigma = to_decimal(self.noise_multiplier, "noise_multiplier", MAX_NOISE_PLACES)
        q = to_decimal(self.sample_rate, "sample_rate", MAX_RATE_PLACES)
        _check_noise(sigma)
        _check_rate(q)
        _check_steps(self.steps)
        # Normalized in place so that Decimal("1.10") and Decimal("1.1") make the same mechanism.
        object.__setattr__(self, "noise_multiplier", sigma)
        object.__setattr__(self, "sample_rate", q)

    @staticmethod
    def parse(obj: Mapping[str, object]) -> Mechanism:
        """Parse a tx body ``{"noise_multiplier": "1.1", "sample_rate": "0.01", "steps": 100}``.

        Numbers must be strings in canonical plain form (no floats, exponents or trailing zeros),
        σ with at most 6 decimal places and q with at most 12; no other keys are allowed.
        """
        if not isinstance(obj, Mapping):
            raise AccountantError(f"a mechanism must be an object with keys {list(_FIELDS)}")
        keys = set(obj)
        if keys != set(_FIELDS):
            missing = sorted(set(_FIELDS) - keys)
            extra = sorted(str(k) for k in keys - set(_FIELDS))
            raise AccountantError(f"mechanism fields wrong: missing {missing}, unexpected {extra}")
        sigma = parse_canonical(obj["noise_multiplier"], "noise_multiplier", MAX_NOISE_PLACES)
        q = parse_canonical(obj["sample_rate"], "sample_rate", MAX_RATE_PLACES)
        return Mechanism(sigma, q, _check_steps(obj["steps"]))

    @staticmethod
    def of(noise_multiplier: Decimal | Fraction | int | str, sample_rate: Decimal | Fraction | int | str,
           steps: int) -> Mechanism:
        """A mechanism from planning numbers, rounded conservatively onto the allowed grid.

        σ is rounded DOWN to 6 places and q UP to 12 places (e.g. q = Fraction(64, 60000)), so the
        declared mechanism never claims more privacy than the one actually run.
        """
        sigma = _exact(noise_multiplier, "noise_multiplier")
        q = _exact(sample_rate, "sample_rate")
        sigma_units = -ceil_scaled(-sigma, MAX_NOISE_PLACES)  # floor
        q_units = ceil_scaled(q, MAX_RATE_PLACES)
        # Built from a string, which Decimal converts exactly (no context is consulted).
        return Mechanism(Decimal(f"{sigma_units}e-{MAX_NOISE_PLACES}"), Decimal(f"{q_units}e-{MAX_RATE_PLACES}"),
                         steps)

    def to_json(self) -> dict[str, object]:
        """The canonical tx-body form; ``Mechanism.parse(m.to_json()) == m`` always."""
        return {
            "noise_multiplier": canonical_str(self.noise_multiplier),
            "sample_rate": canonical_str(self.sample_rate),
            "steps": self.steps,
        }

