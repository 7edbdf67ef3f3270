"""The node's services: aggregator, evaluator, anchoring, the Ethereum JSON-RPC face, and the aggregation rules.

They build on `fedledger.sdk` and never import `fedledger.client` (tests/unit/test_layers.py).
"""
