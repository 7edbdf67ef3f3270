"""Anchor module: records of confirmed anchors of this chain's checkpoints on a public chain (node/anchor).

The package imports nothing when it loads (see `base.lazy_exports`): other modules use
`keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""

from __future__ import annotations

from fedledger.abci_app.modules.base import lazy_exports

__all__ = [
    "MODULE",
    "ROLES",
    "RecordAnchor",
    "SCHEMES",
    "covering",
    "meta",
]

__getattr__ = lazy_exports(__name__, {
    "MODULE": "module",
    "ROLES": "handlers",
    "RecordAnchor": "msgs",
    "SCHEMES": "msgs",
    "covering": "queries",
    "meta": "handlers",
})
