"""Store keys of the anchor module, all built here (prefixed `an/`, numbers zero-padded so they sort)."""

from __future__ import annotations

__all__ = ["META_KEY", "anchor_key", "tx_key"]

META_KEY = b"an/meta"
"""{count, to_height}: how many anchors exist and the last anchored height (absent: none yet)."""


def anchor_key(seq: int) -> bytes:
    """The seq-th anchor record (1-based)."""
    return b"an/anchor/%010d" % seq


def tx_key(public_chain_id: int, tx_hash: str) -> bytes:
    """Marks a public-chain tx as recorded, so one tx can back only one anchor."""
    return b"an/tx/%d/%s" % (public_chain_id, tx_hash.encode("ascii"))
