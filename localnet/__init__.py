"""FedLedger localnet package."""
