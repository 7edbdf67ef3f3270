"""The lifecycle keeper: what other modules may ask of the lifecycle (federation, governance).

Federation opens rounds from the last good version and stores a task's lifecycle params at
creation; governance changes params and rolls back. Everything else (attestations, quorum,
decisions) stays inside the module.
"""

from __future__ import annotations

from fedledger.abci_app.modules.lifecycle.decisions import RollbackPlan, check_rollback, rollback, set_task_params
from fedledger.abci_app.modules.lifecycle.params import PARAM_NAMES, check_task_params, parse_params
from fedledger.abci_app.modules.lifecycle.pointer import last_good

__all__ = [
    "PARAM_NAMES",
    "RollbackPlan",
    "check_rollback",
    "check_task_params",
    "last_good",
    "parse_params",
    "rollback",
    "set_task_params",
]
