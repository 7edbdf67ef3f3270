"""Lifecycle module: evaluator attestations, weighted-quorum promotion or quarantine, last good version, rollback.

The package imports nothing when it loads (see `base.lazy_exports`): other modules use
`keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""

from __future__ import annotations

from fedledger.abci_app.modules.base import lazy_exports

__all__ = [
    "MODULE",
    "PARAM_NAMES",
    "RollbackPlan",
    "check_rollback",
    "check_task_params",
    "evaluator_weight",
    "last_good",
    "parse_params",
    "rollback",
    "set_task_params",
    "task_params",
    "weighted_median",
]

__getattr__ = lazy_exports(__name__, {
    "MODULE": "module",
    "PARAM_NAMES": "params",
    "RollbackPlan": "decisions",
    "check_rollback": "decisions",
    "check_task_params": "params",
    "evaluator_weight": "weight",
    "last_good": "pointer",
    "parse_params": "params",
    "rollback": "decisions",
    "set_task_params": "decisions",
    "task_params": "params",
    "weighted_median": "decisions",
})
