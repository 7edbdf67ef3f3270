"""FedLedger bench package."""
