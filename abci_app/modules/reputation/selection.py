"""Verifiable reputation-weighted sampling without replacement, seeded by a block hash (pure, integers only).

The whole rule, so that anyone can recompute a selection from the seed and the candidate list:

1. Keep the candidates marked available; give each the weight `score + 1` (a score of 0 still
   has a small chance; an unavailable candidate has none).
2. Sort them by DID (ASCII byte order). This order is the only tie-break there is: it fixes where
   each candidate's interval lies, so the outcome does not depend on the order of the input list.
3. For draw j = 0, 1, ..., min(k, number available) - 1:
       total = sum of the weights still in the pool
       x     = int.from_bytes(sha256(DOMAIN || seed || j as 8 bytes big-endian), "big") mod total
       walk the pool in DID order adding weights; the first candidate whose running sum exceeds x
       is drawn, appended to the result and removed from the pool.
4. The result lists the drawn DIDs in draw order.

Each draw picks a remaining candidate with probability weight / total (up to the modulo bias of
a 256-bit hash reduced mod total, below 2^-190 for any total under 2^64), which is exactly the
successive-sampling distribution of Efraimidis-Spirakis weighted sampling without replacement.
Cost: O(k * n) integer additions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from fedledger.abci_app.errors import ConfigError

__all__ = ["DOMAIN", "SelectionError", "select"]

DOMAIN = b"fedledger/reputation/select/v1\n"


class SelectionError(ConfigError):
    """The candidates, seed or k given to select() are malformed."""

    error_code = "SELECTION"


def _checked(candidates: Sequence[tuple[str, int, bool]]) -> list[tuple[str, int]]:
    """Available (did, weight) pairs sorted by DID, after validating every candidate."""
    seen: set[str] = set()
    pool: list[tuple[str, int]] = []
    for item in candidates:
        if not isinstance(item, tuple) or len(item) != 3:
            raise SelectionError(f"a candidate must be a (did, score, available) tuple, got {item!r}")
        did, score, available = item
        if not isinstance(did, str) or not did or not did.isascii():
            raise SelectionError(f"candidate DID must be a non-empty ASCII string, got {did!r}")
        if not isinstance(score, int) or isinstance(score, bool) or score < 0:
            raise SelectionError(f"candidate {did}: score must be a non-negative integer, got {score!r}")
        if not isinstance(available, bool):
            raise SelectionError(f"candidate {did}: available must be a bool, got {available!r}")
        if did in seen:
            raise SelectionError(f"candidate {did} is listed twice")
        seen.add(did)
        if available:
            pool.append((did, score + 1))
    pool.sort(key=lambda pair: pair[0].encode("ascii"))
    return pool


def select(candidates: Sequence[tuple[str, int, bool]], seed: bytes, k: int) -> list[str]:
    """Draw up to k available candidates, each draw weighted by score + 1, from `seed` (see module doc).

    Returns min(k, number available) distinct DIDs in draw order. Raises SelectionError on
    malformed input (duplicate DID, negative score, non-bool availability, k < 0, seed not bytes).
    """
    if not isinstance(seed, bytes | bytearray):
        raise SelectionError(f"seed must be bytes (e.g. the block hash), got {type(seed).__name__}")
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise SelectionError(f"k must be a non-negative integer, got {k!r}")
    pool = _checked(candidates)
    total = sum(weight for _, weight in pool)
    chosen: list[str] = []
    for draw in range(min(k, len(pool))):
        digest = hashlib.sha256(DOMAIN + bytes(seed) + draw.to_bytes(8, "big")).digest()
        x = int.from_bytes(digest, "big") % total
        running = 0
        for index, (did, weight) in enumerate(pool):
            running += weight
            if x < running:
                chosen.append(did)
                total -= weight
                del pool[index]
                break
    return chosen
