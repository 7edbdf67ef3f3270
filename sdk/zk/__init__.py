"""Zero-knowledge proofs of inference with ezkl: SRS files, per-version circuit setups, proving and verifying."""
