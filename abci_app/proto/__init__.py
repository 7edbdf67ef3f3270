"""FedLedger abci_app.proto package."""
