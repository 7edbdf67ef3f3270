"""Ethereum JSON-RPC for a FedLedger node: the subset web3.py needs, answered from the chain's EVM."""
