"""Federation module: tasks, participants, rounds, contributions and model versions.

The package imports nothing when it loads (see `base.lazy_exports`): other modules use
`keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""

from __future__ import annotations

from fedledger.abci_app.modules.base import lazy_exports

__all__ = [
    "MAX_DEADLINE_BLOCKS",
    "MAX_ROUND_SIZE",
    "MODULE",
    "ModelRef",
    "find_contribution",
    "find_round",
    "find_task",
    "find_version",
    "load_round",
    "load_task",
    "store_round",
    "store_task",
    "store_version",
    "task_exists",
    "version_numbers",
    "versions",
]

__getattr__ = lazy_exports(__name__, {
    "MAX_DEADLINE_BLOCKS": "keeper",
    "MAX_ROUND_SIZE": "keeper",
    "MODULE": "module",
    "ModelRef": "keeper",
    "find_contribution": "keeper",
    "find_round": "keeper",
    "find_task": "keeper",
    "find_version": "keeper",
    "load_round": "keeper",
    "load_task": "keeper",
    "store_round": "keeper",
    "store_task": "keeper",
    "store_version": "keeper",
    "task_exists": "keeper",
    "version_numbers": "keeper",
    "versions": "keeper",
})
