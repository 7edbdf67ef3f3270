"""Shamir t-of-n secret sharing of 32-byte secrets over the prime field GF(2^521 − 1).

The field. p = 2^521 − 1 is a Mersenne prime (so its primality is not in question) and far larger
than the 2^256 secrets, which buys a cheap check against corruption: a secret is an integer
< 2^256, and interpolating through a set that contains a garbled (random) share yields an
essentially uniform field element, ≥ 2^256 except with probability 2^-265, which
`combine_secret` reports as an error instead of returning a wrong secret. It is no defence against
a crafted share: adding δ to share i shifts the result by δ·λ_i, which an attacker can aim
anywhere; the protocol therefore checks every reconstruction against a commitment (the advertised
s_pk, the self-mask commitment). A share's value is 66 bytes.

Points are x = client index + 1 (never 0, where the secret sits). Coefficients are drawn from a
supplied random source (os.urandom by default; a `Drbg` for reproducible tests) by rejection, so
they are exactly uniform. Reconstruction is Lagrange interpolation at 0 through the t shares with
the smallest points (a deterministic choice), with one modular inversion per secret.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.prg import RandomSource

__all__ = [
    "PRIME",
    "SECRET_BYTES",
    "SHARE_BYTES",
    "Share",
    "ShamirError",
    "combine",
    "combine_secret",
    "split",
    "split_secret",
]

PRIME = (1 << 521) - 1
SECRET_BYTES = 32
SHARE_BYTES = 66  # ceil(521 / 8)
_DRAW_MASK = (1 << 521) - 1


class ShamirError(SecAggError):
    """Shares cannot be made or combined: bad threshold or points, too few or inconsistent shares."""

    error_code = "SHAMIR"


@dataclass(frozen=True)
class Share:
    """One share: the sharing polynomial's value y at the point x (x = holder's index + 1)."""

    x: int
    y: int

    def __post_init__(self) -> None:
        if isinstance(self.x, bool) or not isinstance(self.x, int) or not 0 < self.x < PRIME:
            raise ShamirError(f"share point must be an integer in [1, p), got {self.x!r}")
        if isinstance(self.y, bool) or not isinstance(self.y, int) or not 0 <= self.y < PRIME:
            raise ShamirError(f"share value of point {self.x} must be an integer in [0, p)")

    def value_bytes(self) -> bytes:
        """The share value as 66 big-endian bytes."""
        return self.y.to_bytes(SHARE_BYTES, "big")


def _random_element(rng: RandomSource) -> int:
    while True:
        draw = int.from_bytes(rng(SHARE_BYTES), "big") & _DRAW_MASK
        if draw < PRIME:  # rejects only the single value 2^521 − 1
            return draw


def _check_threshold(threshold: int, available: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ShamirError(f"threshold must be a positive integer, got {threshold!r}")
    if threshold > available:
        raise ShamirError(f"threshold {threshold} is larger than the {available} shares")


def _check_points(points: Sequence[int]) -> None:
    seen: set[int] = set()
    for x in points:
        if isinstance(x, bool) or not isinstance(x, int) or not 0 < x < PRIME:
            raise ShamirError(f"share points must be integers in [1, p), got {x!r}")
        if x in seen:
            raise ShamirError(f"duplicate share point {x}")
        seen.add(x)


def split(secret: int, points: Sequence[int], threshold: int, rng: RandomSource = os.urandom) -> list[Share]:
    """Share the field element secret so that any threshold of the shares at points recover it."""
    if isinstance(secret, bool) or not isinstance(secret, int) or not 0 <= secret < PRIME:
        raise ShamirError("secret must be an integer in [0, p)")
    _check_points(points)
    _check_threshold(threshold, len(points))
    coefficients = [secret] + [_random_element(rng) for _ in range(threshold - 1)]
    shares = []
    for x in points:
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares.append(Share(x, y))
    return shares


def split_secret(secret: bytes, points: Sequence[int], threshold: int, rng: RandomSource = os.urandom) -> list[Share]:
    """Share a 32-byte secret (read as a big-endian integer < 2^256)."""
    if not isinstance(secret, bytes | bytearray) or len(secret) != SECRET_BYTES:
        raise ShamirError(f"secret must be {SECRET_BYTES} bytes")
    return split(int.from_bytes(secret, "big"), points, threshold, rng)


def combine(shares: Sequence[Share], threshold: int) -> int:
    """Interpolate the shared field element from the threshold shares with the smallest points.

    Raises ShamirError on fewer than threshold shares or on a duplicated point. With exactly
    threshold shares any values interpolate, so a wrong share gives a wrong element: use
    `combine_secret`, whose range check catches that for 32-byte secrets.
    """
    if not all(isinstance(s, Share) for s in shares):
        raise ShamirError("combine expects Share objects")
    _check_points([s.x for s in shares])
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ShamirError(f"threshold must be a positive integer, got {threshold!r}")
    if len(shares) < threshold:
        raise ShamirError(f"need at least {threshold} shares to reconstruct, got {len(shares)}")
    chosen = sorted(shares, key=lambda s: s.x)[:threshold]
    xs = [s.x for s in chosen]
    # secret = Σ y_i · Π_{j≠i} x_j / (x_j − x_i). The points are small, so numerators and
    # denominators are computed exactly as integers (cheap) and reduced mod p once.
    everything = math.prod(xs)
    nums = [everything // xi % PRIME for xi in xs]
    dens = [math.prod(xj - xi for xj in xs if xj != xi) % PRIME for xi in xs]
    # Batch inversion (prefix products): one pow() for all denominators.
    prefix = [1]
    for den in dens:
        prefix.append(prefix[-1] * den % PRIME)
    inv = pow(prefix[-1], -1, PRIME)
    total = 0
    for i in range(len(xs) - 1, -1, -1):
        inv_den = inv * prefix[i] % PRIME
        inv = inv * dens[i] % PRIME
        total = (total + chosen[i].y * nums[i] % PRIME * inv_den) % PRIME
    return total


def combine_secret(shares: Sequence[Share], threshold: int) -> bytes:
    """Reconstruct a 32-byte secret; raise ShamirError if the shares are too few or inconsistent."""
    value = combine(shares, threshold)
    if value >> (8 * SECRET_BYTES):
        raise ShamirError(
            f"the {threshold} shares at points {sorted(s.x for s in shares)[:threshold]} are inconsistent "
            "(at least one is wrong): they interpolate to a value that is no 32-byte secret"
        )
    return value.to_bytes(SECRET_BYTES, "big")
