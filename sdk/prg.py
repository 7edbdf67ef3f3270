"""Deterministic cryptographic pseudo-random streams (AES-256-CTR) for DP noise, stochastic rounding and shared masks.

Why not numpy's generators: DP noise only protects data if nobody else can predict it, and a
shared coordinate mask must be the same bits on every client, whatever numpy version it runs.
AES-256 in counter mode over an all-zero plaintext gives both: a keystream that is
computationally indistinguishable from random without the key, and a fixed, documented byte
sequence for a given key.

Key derivation: ``key = SHA-256(b"fedledger/prg/v1" || u16(len(domain)) || domain || seed)``.
The domain string separates uses, so one 32-byte round seed can drive the coordinate mask and
anything else without two uses ever sharing a keystream. The counter block starts at zero; each
(seed, domain) pair is a fresh key, so a nonce adds nothing.

Numbers from the stream (all little-endian, consumed in call order):

* ``uint64(n)``: 8 bytes each;
* ``uniform(n)``: ``(u64 >> 11) · 2^-53``, a float64 in [0, 1) on the 53-bit grid (unbiased);
* ``standard_normal(n)``: Box-Muller on ``ceil(n/2)`` pairs of such uniforms, the first of each
  pair mapped to (0, 1] by ``1 − u``; the cosine halves come first, then the sine halves, and
  the result is cut to n. Both halves of a pair are independent standard normals. The 53-bit
  grid bounds |z| by sqrt(2·53·ln 2) ≈ 8.57: the tail beyond has mass about 1e-17, far below
  anything a DP analysis at δ ≥ 1e-12 notices.

``seed=None`` everywhere means 32 fresh bytes from ``os.urandom``: what DP noise must use in
production. Explicit seeds are for tests and for values that must agree between parties (masks).
"""

from __future__ import annotations

import hashlib
import math
import os
import struct

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedledger.abci_app.errors import ProtocolError

__all__ = ["SEED_BYTES", "PRGError", "Stream", "derive_key", "fresh_seed"]

#: Length of fresh seeds and of derived keys.
SEED_BYTES = 32
_TAG = b"fedledger/prg/v1"
_ZERO_COUNTER = bytes(16)
# One keystream call is capped so a typo in n cannot ask for terabytes.
_MAX_WORDS = 1 << 32


class PRGError(ProtocolError):
    """A seed, domain or request the PRG refuses (wrong type, empty domain, absurd size)."""

    error_code = "PRG"


def fresh_seed() -> bytes:
    """32 bytes from the operating system's CSPRNG: the seed DP noise uses unless a test passes one."""
    return os.urandom(SEED_BYTES)


def derive_key(seed: bytes, domain: str) -> bytes:
    """The AES-256 key for ``(seed, domain)``: SHA-256 over a tag, the length-prefixed domain and the seed."""
    if not isinstance(seed, bytes | bytearray):
        raise PRGError(f"seed must be bytes, not {type(seed).__name__}")
    if not isinstance(domain, str) or not domain:
        raise PRGError("domain must be a non-empty string")
    raw = domain.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise PRGError("domain is longer than 65535 bytes")
    return hashlib.sha256(_TAG + struct.pack("<H", len(raw)) + raw + bytes(seed)).digest()


def _count(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise PRGError(f"count must be a non-negative int, got {n!r}")
    if n > _MAX_WORDS:
        raise PRGError(f"count {n} exceeds the limit of {_MAX_WORDS} per call")
    return int(n)


class Stream:
    """An AES-256-CTR keystream for one (seed, domain); successive calls continue where the last stopped."""

    def __init__(self, seed: bytes | None, domain: str) -> None:
        key = derive_key(fresh_seed() if seed is None else seed, domain)
        self._enc = Cipher(algorithms.AES(key), modes.CTR(_ZERO_COUNTER)).encryptor()

    def read(self, n: int) -> bytes:
        """The next n keystream bytes."""
        return self._enc.update(bytes(_count(n)))

    def uint64(self, n: int) -> npt.NDArray[np.uint64]:
        """The next n little-endian 64-bit words as a native uint64 array."""
        n = _count(n)
        return np.frombuffer(self.read(8 * n), dtype="<u8").astype(np.uint64)

    def uniform(self, n: int) -> npt.NDArray[np.float64]:
        """n floats uniform on the 53-bit grid of [0, 1)."""
        words = self.uint64(n)
        return (words >> np.uint64(11)).astype(np.float64) * (2.0**-53)

    def standard_normal(self, n: int) -> npt.NDArray[np.float64]:
        """n independent N(0, 1) draws by Box-Muller (layout in the module docstring)."""
        n = _count(n)
        pairs = (n + 1) // 2
        u = self.uniform(2 * pairs)
        radius = np.sqrt(-2.0 * np.log1p(-u[:pairs]))  # 1 − u is in (0, 1], so the log is finite
        angle = (2.0 * math.pi) * u[pairs:]
        return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:n]
