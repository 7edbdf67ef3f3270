"""Fixed-point quantization: the no-overflow bound at its edges, rounding, decoding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedledger.sdk.secagg import simulate_round
from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.prg import derive_seed
from fedledger.sdk.secagg.quantize import Quantizer, ceil_log2

SEED = bytes(range(32))


def test_ceil_log2_exact() -> None:
    for n in range(1, 5000):
        m = ceil_log2(n)
        assert 2**m >= n and (n == 1 or 2 ** (m - 1) < n)


def test_bound_holds_for_every_n_and_q_and_is_tight() -> None:
    # For every client count and value width: N·(2^q − 1) ≤ 2^b − 1 (no wrap), and with one bit
    # fewer the all-at-+c sum would wrap, so b is the least safe width; b ≤ q + ⌈log2 N⌉.
    for n in range(1, 1100):
        m = ceil_log2(n)
        for q in sorted({1, 2, 8, 16, 24, 48 - m if m < 16 else 30}):
            quant = Quantizer(1.0, q, n)
            b = quant.field_bits
            worst = n * quant.levels
            assert worst <= 2**b - 1
            assert worst >= 2 ** (b - 1)
            assert b <= q + m
        # for_field: the largest q that fits 32 bits; q + 1 would not.
        best = Quantizer.for_field(1.0, n, 32)
        assert best.field_bits <= 32
        assert n * (2 ** (best.value_bits + 1) - 1) > 2**32 - 1


@pytest.mark.parametrize("clip", [1e-3, 0.5, 1.0, 7.25, 1e4])
@pytest.mark.parametrize("value_bits", [1, 2, 11, 25, 48])
def test_edges_map_to_zero_and_levels(clip: float, value_bits: int) -> None:
    quant = Quantizer(clip, value_bits, 3)
    x = np.array([-clip, clip, -2 * clip, 5 * clip, 0.0, -np.float32(clip), np.float32(clip)], dtype=np.float64)
    q = quant.quantize(x)
    levels = quant.levels
    assert q[0] == 0 and q[1] == levels and q[2] == 0 and q[3] == levels
    assert q[5] <= 1 and q[6] >= levels - 1  # float32 rounding of the clip itself
    assert abs(int(q[4]) - levels / 2) <= 0.5
    for seed in (derive_seed(SEED, "r", i) for i in range(3)):
        qs = quant.quantize(x, seed)
        assert qs[0] == 0 and qs[1] == levels and qs[2] == 0 and qs[3] == levels


@pytest.mark.parametrize(("n", "value_bits"), [(2, 31), (3, 30), (4, 30), (5, 29), (8, 29), (9, 4), (16, 28),
                                               (17, 2), (32, 27)])
def test_secure_sum_of_all_extremes_never_wraps(n: int, value_bits: int) -> None:
    """All inputs at +c, all at −c, and each mix, through the real protocol with the tightest field."""
    clip = 0.75
    d = 4
    quant = Quantizer(clip, value_bits, n)
    b = quant.field_bits
    for n_high in sorted({0, 1, n // 2, n - 1, n}):
        x = np.full((n, d), -clip, dtype=np.float32)
        x[:n_high] = clip
        x[:, 1] = np.where(np.arange(n) < n_high, -clip, clip)  # the opposite pattern in one column
        res = simulate_round(x, clip, SEED, value_bits=value_bits)
        assert res.quantizer == quant and res.setup.field_bits == b
        total = res.aggregate.total
        expect0 = n_high * quant.levels
        expect1 = (n - n_high) * quant.levels
        assert int(total[0]) == expect0 < 2**b and int(total[1]) == expect1 < 2**b
        mean = res.mean
        want0 = clip * (2 * n_high - n) / n
        assert abs(float(mean[0]) - want0) <= 1e-6 * clip
        assert abs(float(mean[1]) + want0) <= 1e-6 * clip


def test_round_to_nearest_error_is_half_a_step() -> None:
    quant = Quantizer(2.0, 12, 10)
    x = np.linspace(-2.0, 2.0, 10_001)
    q = quant.quantize(x)
    back = q.astype(np.float64) / quant.scale - 2.0
    assert np.max(np.abs(back - x)) <= 0.5 / quant.scale + 1e-12


def test_stochastic_rounding_is_unbiased_deterministic_and_brackets() -> None:
    quant = Quantizer(1.0, 4, 4)
    x = np.full(200_000, 0.3)
    v = (0.3 + 1.0) * quant.scale
    seed = derive_seed(SEED, "rounding")
    q = quant.quantize(x, seed)
    assert set(np.unique(q).tolist()) == {math.floor(v), math.ceil(v)}
    assert abs(q.mean() - v) < 0.01  # sd of the mean ≈ 0.5 / sqrt(2e5) ≈ 0.001
    assert np.array_equal(q, quant.quantize(x, seed))
    assert not np.array_equal(q, quant.quantize(x, derive_seed(SEED, "other")))


def test_for_field_and_dtypes() -> None:
    assert Quantizer.for_field(1.0, 100, 32) == Quantizer(1.0, 25, 100)
    assert Quantizer.for_field(1.0, 1000, 32).value_bits == 22
    assert Quantizer.for_field(1.0, 2, 64).value_bits == 48
    assert Quantizer(1.0, 20, 100).quantize(np.zeros(3)).dtype == np.uint32
    assert Quantizer(1.0, 40, 100).quantize(np.zeros(3)).dtype == np.uint64
    with pytest.raises(SecAggError, match="cannot hold sums of 2000 inputs"):
        Quantizer.for_field(1.0, 2000, 11)


def test_bad_input() -> None:
    quant = Quantizer(1.0, 8, 5)
    with pytest.raises(SecAggError, match="NaN or infinite"):
        quant.quantize(np.array([0.0, np.nan]))
    with pytest.raises(SecAggError, match="1-D"):
        quant.quantize(np.zeros((2, 2)))
    with pytest.raises(SecAggError, match="count must be an integer in \\[0, 5\\]"):
        quant.dequantize_sum(np.zeros(2, dtype=np.uint32), 6)
    with pytest.raises(SecAggError, match="mean of zero"):
        quant.dequantize_mean(np.zeros(2, dtype=np.uint32), 0)
    with pytest.raises(SecAggError, match="clip"):
        Quantizer(0.0, 8, 5)
    with pytest.raises(SecAggError, match="value_bits"):
        Quantizer(1.0, 49, 5)
    with pytest.raises(SecAggError, match="more than 64"):
        Quantizer(1.0, 48, 2**20)
