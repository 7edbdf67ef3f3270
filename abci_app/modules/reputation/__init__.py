"""Reputation module: decaying fixed-point scores per DID, moved by other modules' hooks, and weighted selection."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module
from fedledger.abci_app.modules.reputation.genesis import (
    DEFAULT_PARAMS,
    PENALTY_REASONS,
    WEIGHT_NAMES,
    init_genesis,
    params,
    set_params,
    validate_params,
)
from fedledger.abci_app.modules.reputation.hooks import (
    check_did,
    check_reason,
    on_contribution_accepted,
    on_contribution_rejected,
    on_version_outcome,
    score_at,
    scores_at,
)
from fedledger.abci_app.modules.reputation.math import SCALE, decay
from fedledger.abci_app.modules.reputation.queries import QUERIES
from fedledger.abci_app.modules.reputation.selection import SelectionError, select

__all__ = [
    "DEFAULT_PARAMS",
    "MODULE",
    "PENALTY_REASONS",
    "SCALE",
    "WEIGHT_NAMES",
    "SelectionError",
    "check_did",
    "check_reason",
    "decay",
    "on_contribution_accepted",
    "on_contribution_rejected",
    "on_version_outcome",
    "params",
    "score_at",
    "scores_at",
    "select",
    "set_params",
    "validate_params",
]

# Scores move only through other modules' txs (contributions judged, versions promoted or
# quarantined), which call the hooks; so this module has no tx routes of its own.
MODULE = Module(name="reputation", queries=QUERIES, init_genesis=init_genesis)
