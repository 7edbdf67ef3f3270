"""Lifecycle module: evaluator attestations, weighted-quorum promotion or quarantine, last good version, rollback."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.lifecycle.decisions import (
    RollbackPlan,
    check_rollback,
    rollback,
    set_task_params,
    weighted_median,
)
from fedledger.abci_app.modules.lifecycle.handlers import HANDLERS
from fedledger.abci_app.modules.lifecycle.msgs import PARSERS
from fedledger.abci_app.modules.lifecycle.params import (
    PARAM_NAMES,
    check_task_params,
    init_genesis,
    parse_params,
    task_params,
)
from fedledger.abci_app.modules.lifecycle.pointer import last_good
from fedledger.abci_app.modules.lifecycle.queries import QUERIES
from fedledger.abci_app.modules.lifecycle.weight import evaluator_weight

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

MODULE = Module(
    name="lifecycle",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
    init_genesis=init_genesis,
)
