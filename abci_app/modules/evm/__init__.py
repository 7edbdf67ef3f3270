"""EVM module: EVM txs (their own envelope), DID↔address binding, EVM queries, genesis contracts, policy pointers.

The package imports nothing when it loads (see `base.lazy_exports`): other modules use
`keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""

from __future__ import annotations

from fedledger.abci_app.modules.base import lazy_exports

__all__ = [
    "MODULE",
    "check_set_policy",
    "execute_set_policy",
    "parse_set_policy",
]

__getattr__ = lazy_exports(__name__, {
    "MODULE": "module",
    "check_set_policy": "keeper",
    "execute_set_policy": "keeper",
    "parse_set_policy": "keeper",
})
