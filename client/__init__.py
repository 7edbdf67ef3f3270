"""FedLedger client package."""
