"""The attestation module: members submit AMD SEV-SNP evidence, the chain verifies it at block time and records it."""
