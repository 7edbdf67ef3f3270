"""Store keys of the reputation module (params, per-DID scores, per-DID movement history)."""

from __future__ import annotations

__all__ = ["PARAMS_KEY", "history_key", "history_prefix", "score_key"]

PARAMS_KEY = b"rep/params"


def score_key(did: str) -> bytes:
    """A DID's stored score record {did, score, height, entries}."""
    return b"rep/score/" + did.encode("ascii")


def history_prefix(did: str) -> bytes:
    """Prefix of a DID's history entries; a DID never contains '/', so prefixes of two DIDs never nest."""
    return b"rep/hist/" + did.encode("ascii") + b"/"


def history_key(did: str, seq: int) -> bytes:
    """The DID's seq-th movement (0-based); zero-padded so key order is movement order."""
    return history_prefix(did) + b"%010d" % seq
