"""Anchor module: records of confirmed anchors of this chain's checkpoints on a public chain (node/anchor).

The package imports nothing when it loads, so that importing one module's records or keeper never pulls in
another's handlers: other modules use `keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""
