"""The sdk layer: what a participant and a node share, under both and above the chain's own types.

It holds the chain client (CometBFT RPC and websocket, the chain view, signing and submitting
txs, the light client and proof checks, key files, the error family's off-chain members) and the
pure libraries both sides of the protocol must agree on byte for byte: tensors, the PRG, SecAgg+,
DP clipping and noise, compression wire formats, flat vectors, the secure round plan, and the
model, data and training code (`sdk.ml`). It imports only `fedledger.abci_app` and
`fedledger.ipfs`; `client/` and `node/` import it and never each other (tests/unit/test_layers.py).
"""
