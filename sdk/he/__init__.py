"""Encrypted (CKKS) inference: parameters, client keys, the polynomial model split into stages, signed records.

The client encrypts its features under its own CKKS key; inference nodes evaluate one stage of a
polynomial model each on the ciphertext and sign a receipt; only the client can decrypt. See
params.py (the scheme), keys.py (the client's key bundle), poly.py (the model and its stages),
records.py (requests, receipts and the wire frame).
"""
