"""FedLedger node package."""
