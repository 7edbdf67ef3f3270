"""The reputation module object: its tx routes, queries, genesis and end-block hook, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module
from fedledger.abci_app.modules.reputation.genesis import (
    init_genesis,
)
from fedledger.abci_app.modules.reputation.queries import QUERIES

__all__ = ["MODULE"]

# Scores move only through other modules' txs (contributions judged, versions promoted or
# quarantined), which call the hooks; so this module has no tx routes of its own.
MODULE = Module(name="reputation", queries=QUERIES, init_genesis=init_genesis)
