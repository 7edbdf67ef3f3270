"""The evaluation harness: seeded federated experiments (methods × attacks × seeds) and their tables.

`fedledger experiment run CONFIG.toml` runs the fast in-process mode (`fast.py`): the chain's
modules drive the FedLedger method block by block without CometBFT, and the baselines use the same
training, SecAgg and aggregation libraries without the chain.
"""
