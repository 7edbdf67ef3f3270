"""Auth module: per-signer nonces that make every tx single-use."""
