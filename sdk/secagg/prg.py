"""The cryptographic PRG that expands 32-byte seeds into mask vectors over Z_(2^b), and seeded helpers.

Masks come from AES-128 in counter mode (`cryptography`, which uses AES-NI): key = seed[0:16],
initial counter block = seed[16:32] (big-endian, the whole 128-bit block increments). The
keystream is read as little-endian unsigned words and reduced mod 2^b by masking the low b bits,
which is exactly uniform because 2^b divides the word size. Seeds are always outputs of HKDF or
SHA-256 (or fresh randomness), so every seed is a uniformly random 256-bit string and distinct
seeds never share a key-and-counter stream except with negligible probability.

Word size: b ≤ 32 uses uint32 (4 bytes per element), 32 < b ≤ 64 uses uint64. Arithmetic mod
2^b is numpy's wrapping unsigned arithmetic on that word followed by a final mask: sums mod 2^32
(or 2^64) reduce correctly mod 2^b because 2^b divides them. numpy's random generators are never
used for anything secret.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedledger.sdk.secagg.errors import SecAggError

__all__ = [
    "SEED_BYTES",
    "Drbg",
    "MaskAccumulator",
    "RandomSource",
    "UIntArray",
    "check_bits",
    "check_seed",
    "derive_seed",
    "dtype_for_bits",
    "expand",
    "keystream",
    "permutation",
    "uniform01",
]

SEED_BYTES = 32
MAX_BITS = 64

# A source of fresh random bytes: os.urandom in production, a Drbg in tests and simulations.
RandomSource = Callable[[int], bytes]
UIntArray = npt.NDArray[np.unsignedinteger[Any]]


def check_seed(seed: bytes, what: str = "seed") -> bytes:
    """Return seed if it is exactly 32 bytes, else raise SecAggError."""
    if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
        got = f"{len(seed)} bytes" if isinstance(seed, bytes | bytearray) else type(seed).__name__
        raise SecAggError(f"{what} must be {SEED_BYTES} bytes, got {got}")
    return bytes(seed)


def check_bits(bits: int) -> int:
    """Return bits if 1 ≤ bits ≤ 64 (the modulus 2^bits fits a uint64 word), else raise SecAggError."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise SecAggError(f"field bits must be an integer in [1, {MAX_BITS}], got {bits!r}")
    return bits


def dtype_for_bits(bits: int) -> np.dtype[np.unsignedinteger[Any]]:
    """The unsigned word that holds Z_(2^bits): uint32 up to 32 bits, uint64 above."""
    return np.dtype(np.uint32) if check_bits(bits) <= 32 else np.dtype(np.uint64)


def _cipher(seed: bytes) -> Any:
    return Cipher(algorithms.AES(seed[:16]), modes.CTR(seed[16:])).encryptor()


def keystream(seed: bytes, nbytes: int) -> bytes:
    """The first nbytes of the AES-128-CTR keystream of seed."""
    check_seed(seed)
    if nbytes < 0:
        raise SecAggError(f"keystream length must be non-negative, got {nbytes}")
    out: bytes = _cipher(seed).update(bytes(nbytes))
    return out


def expand(seed: bytes, dim: int, bits: int) -> UIntArray:
    """Expand seed into dim uniform elements of Z_(2^bits), as a new writable uint32/uint64 array."""
    dtype = dtype_for_bits(bits)
    if dim < 0:
        raise SecAggError(f"dimension must be non-negative, got {dim}")
    nbytes = dim * dtype.itemsize
    # Uninitialised room (update_into overwrites it) plus the 15 spare bytes update_into demands.
    buf = np.empty(nbytes + 15, dtype=np.uint8)
    _cipher(check_seed(seed)).update_into(bytes(nbytes), buf)
    out: UIntArray = buf[:nbytes].view(dtype.newbyteorder("<")).astype(dtype, copy=False)
    if bits < 8 * dtype.itemsize:
        np.bitwise_and(out, dtype.type((1 << bits) - 1), out=out)
    return out


class MaskAccumulator:
    """A running sum mod 2^bits of vectors and PRG expansions, without a temporary array per seed.

    Each expansion is written by `update_into` into one reused scratch buffer and added in place,
    which keeps the client's and the server's mask work to one keystream pass and one add each.
    """

    def __init__(self, dim: int, bits: int) -> None:
        self.bits = check_bits(bits)
        self.dtype = dtype_for_bits(bits)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 0:
            raise SecAggError(f"dimension must be a non-negative integer, got {dim!r}")
        self.dim = dim
        self._nbytes = dim * self.dtype.itemsize
        self._zeros = bytes(self._nbytes)
        # update_into wants room for one extra block minus a byte, whatever the mode.
        self._scratch = bytearray(self._nbytes + 15)
        self._stream = np.frombuffer(self._scratch, dtype=self.dtype.newbyteorder("<"), count=dim)
        self.total: UIntArray = np.zeros(dim, dtype=self.dtype)

    def _expand(self, seed: bytes) -> UIntArray:
        _cipher(check_seed(seed)).update_into(self._zeros, self._scratch)
        return self._stream

    def add_seed(self, seed: bytes) -> None:
        """Add the expansion of seed."""
        np.add(self.total, self._expand(seed), out=self.total)

    def subtract_seed(self, seed: bytes) -> None:
        """Subtract the expansion of seed."""
        np.subtract(self.total, self._expand(seed), out=self.total)

    def add_vector(self, vector: UIntArray) -> None:
        """Add a vector of the same length whose values are already reduced mod 2^bits."""
        np.add(self.total, vector, out=self.total, casting="unsafe")

    def result(self) -> UIntArray:
        """The sum reduced mod 2^bits (the accumulator's own array, reduced in place)."""
        if self.bits < 8 * self.dtype.itemsize:
            np.bitwise_and(self.total, self.dtype.type((1 << self.bits) - 1), out=self.total)
        return self.total


def derive_seed(seed: bytes, label: str, *parts: int) -> bytes:
    """A 32-byte seed for one purpose (label) and position (parts), independent of every other one.

    SHA-256 over a length-prefixed encoding, so no two (label, parts) pairs collide by concatenation.
    """
    h = hashlib.sha256()
    h.update(b"fedledger-secagg-v1/derive\x00")
    h.update(check_seed(seed))
    encoded = label.encode("utf-8")
    h.update(len(encoded).to_bytes(4, "big") + encoded)
    for part in parts:
        if part < 0:
            raise SecAggError(f"derive_seed parts must be non-negative, got {part}")
        h.update(part.to_bytes(8, "big"))
    return h.digest()


class Drbg:
    """A deterministic random byte source (AES-128-CTR keystream of a seed) for tests and simulations.

    Calling it with n returns the next n bytes of the stream, so it can stand in for os.urandom.
    Never use it for real key material unless its seed is itself secret and fresh.
    """

    def __init__(self, seed: bytes) -> None:
        self._encryptor = _cipher(check_seed(seed))

    def __call__(self, n: int) -> bytes:
        """The next n bytes of the stream."""
        if n < 0:
            raise SecAggError(f"cannot draw a negative number of bytes ({n})")
        return bytes(self._encryptor.update(bytes(n)))


def uniform01(seed: bytes, n: int) -> npt.NDArray[np.float64]:
    """n floats uniform on [0, 1) with 53 random bits each, from the PRG (for stochastic rounding)."""
    words = expand(seed, n, 64)
    return (words >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def permutation(seed: bytes, n: int) -> npt.NDArray[np.int64]:
    """A uniformly random permutation of range(n) derived from seed (argsort of 64-bit PRG keys).

    A stable sort breaks the (probability ≈ n²/2^65) ties by position, so the result is always
    deterministic.
    """
    keys = expand(seed, n, 64)
    return np.argsort(keys, kind="stable").astype(np.int64)
