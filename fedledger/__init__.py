"""FedLedger: federated learning and model sharing coordinated by a permissioned CometBFT ledger.

The repository keeps the design's top-level folders (abci_app/, sdk/, client/, node/, ...); each
entry of this folder is a relative symlink to one of them, so that `fedledger.<folder>` is the
installed name and tools (mypy, IDEs, setuptools) see one ordinary package. Layers, top to bottom
(tests/unit/test_layers.py enforces them):

    apps, bench              the CLI, demo, experiment harness and benchmarks
    client | node | localnet  services; none imports another
    sdk | ipfs               the shared layer: chain client, typed errors, protocol libraries
    abci_app                 the state machine and its public message and record types
"""
