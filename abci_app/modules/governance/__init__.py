"""Governance module: organization administrators propose and vote on policy and membership changes.

The package imports nothing when it loads (see `base.lazy_exports`): other modules use
`keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""

from __future__ import annotations

from fedledger.abci_app.modules.base import lazy_exports

__all__ = [
    "MODULE",
]

__getattr__ = lazy_exports(__name__, {
    "MODULE": "module",
})
