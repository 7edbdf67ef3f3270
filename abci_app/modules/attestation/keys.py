"""Store keys of the attestation module, all built here (prefixed `att/`)."""

from __future__ import annotations

__all__ = ["PARAMS_KEY", "record_key"]

PARAMS_KEY = b"att/params"
"""The module's params (absent: the built-in defaults, see params.py)."""


def record_key(did: str) -> bytes:
    """The latest attestation record of a DID (valid or refused)."""
    return b"att/rec/" + did.encode("utf-8")
