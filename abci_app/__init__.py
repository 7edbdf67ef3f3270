"""FedLedger abci_app package."""
