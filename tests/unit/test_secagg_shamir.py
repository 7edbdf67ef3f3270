"""Shamir sharing over GF(2^521 − 1): round trips, the threshold edge, bad input and tampering."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.sdk.secagg.prg import Drbg
from fedledger.sdk.secagg.shamir import (
    PRIME,
    ShamirError,
    Share,
    combine,
    combine_secret,
    split,
    split_secret,
)

SEED = bytes(range(32))


def reference_interpolate_at_zero(shares: list[Share]) -> int:
    """Textbook Lagrange, one modular inverse per term."""
    total = 0
    for i, si in enumerate(shares):
        term = si.y
        for j, sj in enumerate(shares):
            if i != j:
                term = term * sj.x * pow(sj.x - si.x, -1, PRIME) % PRIME
        total = (total + term) % PRIME
    return total


def test_prime_is_the_mersenne_prime_2_521_minus_1() -> None:
    assert PRIME == 2**521 - 1
    # Fermat checks to a few bases (2^521 − 1 is a known Mersenne prime).
    assert all(pow(a, PRIME - 1, PRIME) == 1 for a in (2, 3, 5, 7, 11))


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    n=st.integers(1, 12),
    data=st.data(),
)
def test_any_t_shares_recover_the_secret(secret: bytes, n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(1, n))
    points = data.draw(st.lists(st.integers(1, 5000), min_size=n, max_size=n, unique=True))
    shares = split_secret(secret, points, t, Drbg(SEED))
    subset = data.draw(st.lists(st.sampled_from(shares), min_size=t, max_size=n, unique=True))
    assert combine_secret(subset, t) == secret
    assert combine(subset, t) == reference_interpolate_at_zero(sorted(subset, key=lambda s: s.x)[:t])


def test_shares_lie_on_one_polynomial_of_degree_t_minus_1() -> None:
    shares = split(123456789, list(range(1, 8)), 3, Drbg(SEED))
    # Every 3-subset interpolates to the same secret; with 2 shares the secret is out of reach.
    for trio in itertools.combinations(shares, 3):
        assert combine(list(trio), 3) == 123456789
    assert reference_interpolate_at_zero(shares[:2]) != 123456789


def test_threshold_edge() -> None:
    secret = bytes(range(100, 132))
    shares = split_secret(secret, [1, 2, 3, 4, 5], 4, Drbg(SEED))
    assert combine_secret(shares[:4], 4) == secret
    with pytest.raises(ShamirError, match="need at least 4 shares to reconstruct, got 3"):
        combine_secret(shares[:3], 4)
    # Claiming a lower threshold than the one used for sharing yields no secret, and says so.
    with pytest.raises(ShamirError, match="inconsistent"):
        combine_secret(shares[:3], 3)


def test_corrupted_share_is_detected_not_silently_wrong() -> None:
    secret = b"\x00" * 31 + b"\x01"
    shares = split_secret(secret, [2, 4, 6, 8], 3, Drbg(SEED))
    garbled = Share(shares[0].x, int.from_bytes(Drbg(bytes(32))(66), "big") % PRIME)
    with pytest.raises(ShamirError, match="inconsistent"):
        combine_secret([garbled, shares[1], shares[2]], 3)
    # The combination picks the t smallest points, so a bad share beyond them is not used.
    late_bad = Share(shares[3].x, 0)
    assert combine_secret([shares[0], shares[1], shares[2], late_bad], 3) == secret


def test_crafted_share_shifts_the_secret_which_is_why_the_protocol_commits() -> None:
    # Adding δ to share i shifts the secret by δ·λ_i (λ_0 = 4·6 / (2·4) = 3 here): the range check
    # cannot see that, so the protocol checks reconstructions against commitments (test_secagg_protocol).
    secret = b"\x00" * 31 + b"\x01"
    shares = split_secret(secret, [2, 4, 6], 3, Drbg(SEED))
    crafted = Share(shares[0].x, (shares[0].y + 1) % PRIME)
    assert combine_secret([crafted, shares[1], shares[2]], 3) == b"\x00" * 31 + b"\x04"


def test_bad_inputs() -> None:
    rng = Drbg(SEED)
    with pytest.raises(ShamirError, match="duplicate share point 3"):
        split(5, [1, 3, 3], 2, rng)
    with pytest.raises(ShamirError, match="points must be integers in \\[1, p\\)"):
        split(5, [0, 1], 2, rng)
    with pytest.raises(ShamirError, match="threshold 3 is larger than the 2 shares"):
        split(5, [1, 2], 3, rng)
    with pytest.raises(ShamirError, match="positive integer"):
        split(5, [1, 2], 0, rng)
    with pytest.raises(ShamirError, match="secret must be 32 bytes"):
        split_secret(b"x" * 31, [1, 2], 2, rng)
    with pytest.raises(ShamirError, match="secret must be an integer"):
        split(PRIME, [1, 2], 2, rng)
    shares = split(5, [1, 2, 3], 2, rng)
    with pytest.raises(ShamirError, match="duplicate share point 1"):
        combine([shares[0], shares[0]], 2)
    with pytest.raises(ShamirError, match="share value"):
        Share(1, PRIME)


def test_deterministic_with_a_drbg() -> None:
    a = split(77, [1, 2, 3], 2, Drbg(SEED))
    b = split(77, [1, 2, 3], 2, Drbg(SEED))
    c = split(77, [1, 2, 3], 2, Drbg(bytes(32)))
    assert a == b and a != c
