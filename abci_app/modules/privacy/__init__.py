"""Privacy module: per-task (ε, δ) budgets per participant and organization, debited by the RDP accountant.

The package imports nothing when it loads (see `base.lazy_exports`): other modules use
`keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""

from __future__ import annotations

from fedledger.abci_app.modules.base import lazy_exports

__all__ = [
    "Debit",
    "MICRO",
    "MODULE",
    "debit",
    "has_policy",
    "parse_policy",
    "policy",
    "set_policy",
]

__getattr__ = lazy_exports(__name__, {
    "Debit": "keeper",
    "MICRO": "keeper",
    "MODULE": "module",
    "debit": "keeper",
    "has_policy": "keeper",
    "parse_policy": "keeper",
    "policy": "keeper",
    "set_policy": "keeper",
})
