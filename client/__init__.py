"""The participant's services: admission, the training client, and the SecAgg+ participant.

They build on `fedledger.sdk` and never import `fedledger.node` (tests/unit/test_layers.py).
"""
