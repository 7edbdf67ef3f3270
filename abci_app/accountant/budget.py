"""Charging a mechanism to a stored RDP history, and the integer micro-ε debit that refuses overspending."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from fedledger.abci_app.accountant.decimals import AccountantError
from fedledger.abci_app.accountant.mechanism import Mechanism
from fedledger.abci_app.accountant.rdp import _compose, _epsilon, _quantize, _vector, quantize_epsilon, rdp
from fedledger.abci_app.errors import Family

__all__ = ["BudgetExceeded", "Charge", "charge", "debit"]

_MAX_MICRO = 2**63 - 1


class BudgetExceeded(AccountantError):
    """A debit that would take spent ε past the budget; nothing was charged."""

    family = Family.CHAIN
    error_code = "BUDGET_EXCEEDED"


@dataclass(frozen=True)
class Charge:
    """What charging a mechanism leads to: the new stored history and the total ε it implies."""

    #: The participant's RDP vector after the mechanism, rounded up to 12 places (store ``encode_rdp`` of it).
    rdp: tuple[Decimal, ...]
    #: ε of that vector at δ, in micro-ε rounded up: the participant's total spend afterwards.
    epsilon_micro: int
    #: The order that achieved ε.
    order: int

    def encoded_rdp(self) -> list[str]:
        """The state form of ``rdp`` (what ``encode_rdp`` gives; ``rdp`` is already rounded up)."""
        return [format(v, "f") for v in self.rdp]


def charge(stored: Sequence[Decimal], mech: Mechanism, delta: Decimal | str) -> Charge:
    """Compose ``mech`` onto a stored (already rounded-up) RDP vector and convert at δ.

    This is the whole computation the chain runs for a contribution and the one a client runs to
    plan: the same inputs give the same ``Charge`` everywhere. The cost of the contribution is
    ``epsilon_micro`` minus the spend recorded for ``stored`` (never negative: ε only grows
    when RDP values do).
    """
    # Validate the stored vector once; the internal steps then work on known-good vectors.
    new = _quantize(_compose(_vector(stored, "stored rdp"), rdp(mech)))
    eps, order = _epsilon(new, delta)
    return Charge(new, quantize_epsilon(eps), order)


def _micro(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AccountantError(f"{name} must be an integer number of micro-ε, not {type(value).__name__}")
    if not 0 <= value <= _MAX_MICRO:
        raise AccountantError(f"{name} must be in [0, 2^63 - 1], got {value}")
    return value


def debit(budget_micro: int, spent_micro: int, cost_micro: int) -> int:
    """The new spent amount after charging ``cost_micro`` micro-ε; raises ``BudgetExceeded`` if over budget.

    A refused debit changes nothing, so ``budget − spent`` can never go negative.
    """
    budget = _micro(budget_micro, "budget_micro")
    spent = _micro(spent_micro, "spent_micro")
    cost = _micro(cost_micro, "cost_micro")
    if spent > budget:
        raise AccountantError(f"spent {spent} µε already exceeds the budget of {budget} µε")
    if cost > budget - spent:
        raise BudgetExceeded(
            f"a debit of {cost} µε would bring spent ε to {spent + cost} µε, over the budget of {budget} µε "
            f"({budget - spent} µε remain); nothing was charged"
        )
    return spent + cost
