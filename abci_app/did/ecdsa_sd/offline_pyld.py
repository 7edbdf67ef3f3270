"""pyld, imported without pulling a network library into consensus.

On import pyld builds a default document loader from `requests` (or `aiohttp`), importing it. The
consensus code never uses that loader (every call passes the bundled-contexts loader of
contexts.py), and abci_app must not load network libraries at all (tests/unit/test_import_rules.py
checks it in a fresh interpreter). So, when neither library is loaded yet, both are hidden while
pyld is first imported: pyld then falls back to its dummy loader, which fetches nothing.
"""

from __future__ import annotations

import sys

_NETWORK_LOADERS = ("requests", "aiohttp")

if "pyld.jsonld" not in sys.modules and not any(name in sys.modules for name in _NETWORK_LOADERS):
    # A None entry in sys.modules makes `import requests` raise ImportError, which pyld catches.
    for _name in _NETWORK_LOADERS:
        sys.modules[_name] = None  # type: ignore[assignment]
    try:
        from pyld import jsonld
        from pyld.canon import URDNA2015
    finally:
        for _name in _NETWORK_LOADERS:
            if sys.modules.get(_name, 0) is None:
                del sys.modules[_name]
else:
    from pyld import jsonld
    from pyld.canon import URDNA2015

__all__ = ["URDNA2015", "jsonld"]
