"""The privacy module object: its tx routes, queries, genesis and end-block hook, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module
from fedledger.abci_app.modules.privacy.queries import QUERIES

__all__ = ["MODULE"]

# Budgets change only through other modules' txs (task creation sets the policy, a contribution
# debits it), so this module has no tx routes of its own.
MODULE = Module(name="privacy", queries=QUERIES)
