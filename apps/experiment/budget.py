"""Client-side privacy planning in the harness: every client charges itself as the chain would, and sits out
when its next contribution would take it past the task's ε budget.

It calls the chain's own accountant (`fedledger.abci_app.accountant.charge`), so a client that
plans here is never refused by the chain, and the baselines, which have no chain, stop at the
same budget as FedLedger does.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_CEILING, Decimal

from fedledger.abci_app.accountant import ZERO_RDP, Mechanism, charge
from fedledger.apps.experiment.common import RunContext
from fedledger.sdk.dp import declared_dp


def planned_dp(ctx: RunContext) -> dict[str, object] | None:
    """The mechanism a client of this run declares per contribution (None: the run is not private)."""
    if ctx.distributed_dp:
        return declared_dp(ctx.cfg.noise_multiplier, ctx.cfg.clip_norm)
    if ctx.dp is not None:
        cfg = ctx.cfg
        mech = Mechanism.of(Decimal(cfg.noise_multiplier), Decimal(cfg.sample_rate), cfg.dp_steps).to_json()
        return {**mech, "clip_norm": cfg.clip_norm}
    return None

__all__ = ["BudgetPlanner", "planned_dp"]


class BudgetPlanner:
    """Per-client RDP histories under one (ε budget, δ), charged with the chain's accountant."""

    def __init__(self, epsilon_budget: str, delta: str) -> None:
        self.budget_micro = int((Decimal(epsilon_budget) * 10**6).to_integral_value(rounding=ROUND_CEILING))
        self.delta = delta
        self._rdp: dict[int, list[Decimal]] = {}
        self._eps: dict[int, int] = {}

    @staticmethod
    def _mechanism(declared: Mapping[str, object]) -> Mechanism:
        return Mechanism.parse({k: v for k, v in declared.items() if k != "clip_norm"})

    def affords(self, client: int, declared: Mapping[str, object] | None) -> bool:
        """True if the client can contribute once more with this mechanism (always, without DP)."""
        if declared is None:
            return True
        c = charge(self._rdp.get(client, list(ZERO_RDP)), self._mechanism(declared), self.delta)
        return c.epsilon_micro <= self.budget_micro

    def spend(self, client: int, declared: Mapping[str, object] | None) -> None:
        """Record one contribution's charge (the chain's own computation)."""
        if declared is None:
            return
        c = charge(self._rdp.get(client, list(ZERO_RDP)), self._mechanism(declared), self.delta)
        self._rdp[client], self._eps[client] = list(c.rdp), c.epsilon_micro

    def max_epsilon(self) -> float:
        """The largest ε any client has spent."""
        return max(self._eps.values(), default=0) / 1e6
