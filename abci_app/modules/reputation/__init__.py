"""Reputation module: decaying fixed-point scores per DID, moved by other modules' hooks, and weighted selection.

The package imports nothing when it loads (see `base.lazy_exports`): other modules use
`keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""

from __future__ import annotations

from fedledger.abci_app.modules.base import lazy_exports

__all__ = [
    "DEFAULT_PARAMS",
    "MODULE",
    "PENALTY_REASONS",
    "SCALE",
    "SelectionError",
    "WEIGHT_NAMES",
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

__getattr__ = lazy_exports(__name__, {
    "DEFAULT_PARAMS": "genesis",
    "MODULE": "module",
    "PENALTY_REASONS": "genesis",
    "SCALE": "math",
    "SelectionError": "selection",
    "WEIGHT_NAMES": "genesis",
    "check_did": "hooks",
    "check_reason": "hooks",
    "decay": "math",
    "on_contribution_accepted": "hooks",
    "on_contribution_rejected": "hooks",
    "on_version_outcome": "hooks",
    "params": "genesis",
    "score_at": "hooks",
    "scores_at": "hooks",
    "select": "selection",
    "set_params": "genesis",
    "validate_params": "genesis",
})
