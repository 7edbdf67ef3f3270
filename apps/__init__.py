"""The apps layer: the `fedledger` CLI, the demo and the experiment harness (bench/ is an app too).

Apps compose the services: they may import `client`, `node`, `localnet`, `sdk` and `abci_app`;
nothing imports an app (tests/unit/test_layers.py).
"""
