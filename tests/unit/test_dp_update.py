"""Update-level DP: clipping, adaptive clipping, Gaussian noise shares, the chain declaration, and the PRG."""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedledger.abci_app.accountant import ORDERS, ZERO_RDP, Mechanism, charge, rdp
from fedledger.abci_app.modules.privacy.budget import parse_mechanism
from fedledger.sdk.dp import (
    AdaptiveClipState,
    UpdateDPError,
    add_central_noise,
    add_distributed_noise,
    bit_mean,
    central_std,
    clip_bit,
    clip_tensors,
    clip_update,
    declared_dp,
    distributed_std,
    gaussian_noise,
    l2_norm,
    noisy_bit_sum,
    plan_charge,
    realized_noise_multiplier,
    round_mechanism,
    update_clip_norm,
    update_noise_multiplier,
)
from fedledger.sdk.prg import PRGError, Stream, derive_key

F32 = np.float32


def _rng(tag: int) -> np.random.Generator:
    # Test data only; the library itself never uses numpy's generators.
    return np.random.default_rng(tag)


def _ref_norm(x: np.ndarray) -> float:
    return math.sqrt(math.fsum(float(v) ** 2 for v in x.ravel()))


# ---------------------------------------------------------------- clipping

def test_clip_below_bound_is_an_identical_copy() -> None:
    x = _rng(1).standard_normal(1000).astype(F32)
    norm = _ref_norm(x)
    out, reported = clip_update(x, norm * 1.01)
    assert out is not x and out.dtype == F32
    assert np.array_equal(out, x)
    assert reported == pytest.approx(norm, rel=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_clip_above_bound_scales_to_at_most_c(seed: int) -> None:
    rng = _rng(100 + seed)
    x = (rng.standard_normal(257) * rng.uniform(0.1, 1e3)).astype(F32)
    c = float(rng.uniform(1e-3, 1.0)) * _ref_norm(x)
    out, reported = clip_update(x, c)
    assert reported == pytest.approx(_ref_norm(x), rel=1e-12)
    assert _ref_norm(out) <= c  # the sensitivity bound holds exactly, in float64
    reference = x.astype(np.float64) * (c / _ref_norm(x))
    assert np.allclose(out, reference, rtol=3e-7, atol=0)
    assert _ref_norm(out) == pytest.approx(c, rel=1e-6)


def _ulps(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.max(np.abs(a.astype(F32).view(np.int32).astype(np.int64) - b.astype(F32).view(np.int32))))


def test_clip_on_a_345_triangle_shrinks_past_the_rounded_values() -> None:
    # float32(0.6) and float32(0.8) both round up, so their norm is 1 + 2.4e-8 > C: the clip must
    # shrink them by an ulp or two to keep the bound exact.
    assert _ref_norm(np.array([0.6, 0.8], dtype=F32)) > 1.0
    out, norm = clip_update(np.array([3.0, 4.0], dtype=F32), 1.0)
    assert norm == 5.0
    assert _ref_norm(out) <= 1.0 and _ref_norm(out) > 1.0 - 1e-6
    assert _ulps(out, np.array([0.6, 0.8], dtype=F32)) <= 3


def test_clip_keeps_shape_and_zero_vector() -> None:
    z = np.zeros((3, 4), dtype=F32)
    out, norm = clip_update(z, 0.5)
    assert norm == 0.0 and out.shape == (3, 4) and not out.any()


def test_clip_tensors_is_joint_over_all_tensors() -> None:
    t = {"b": np.array([4.0], dtype=F32), "a": np.array([[3.0]], dtype=F32)}
    out, norm = clip_tensors(t, 1.0)
    assert norm == 5.0
    joint = np.array([out["a"][0, 0], out["b"][0]], dtype=F32)
    assert out["a"].shape == (1, 1) and out["b"].shape == (1,)
    assert np.array_equal(joint, clip_update(np.array([3.0, 4.0], dtype=F32), 1.0)[0])  # same as one vector
    same, n2 = clip_tensors(t, 10.0)
    assert n2 == 5.0 and np.array_equal(same["a"], t["a"]) and same["a"] is not t["a"]


@pytest.mark.parametrize("bad, match", [
    (np.array([1.0, np.nan], dtype=F32), "NaN"),
    (np.array([1.0, 2.0]), "float32"),
    ([1.0, 2.0], "numpy array"),
])
def test_clip_refuses_bad_updates(bad: object, match: str) -> None:
    with pytest.raises(UpdateDPError, match=match):
        clip_update(bad, 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("c", [0, -1.0, float("inf"), float("nan"), True, "1"])
def test_clip_refuses_bad_clip_norms(c: object) -> None:
    with pytest.raises(UpdateDPError, match="clip_norm"):
        clip_update(np.ones(3, dtype=F32), c)  # type: ignore[arg-type]


def test_l2_norm_matches_fsum() -> None:
    x = (_rng(7).standard_normal(10_001) * 1e3).astype(F32)
    assert l2_norm(x) == pytest.approx(_ref_norm(x), rel=1e-13)


# ---------------------------------------------------------------- adaptive clipping

def test_clip_bit_and_bit_mean() -> None:
    assert clip_bit(1.0, 1.0) == 1 and clip_bit(1.0000001, 1.0) == 0 and clip_bit(0.0, 0.1) == 1
    assert noisy_bit_sum([1, 1, 0, 1], 0.0) == 1.0  # centered: 3·½ − 1·½
    assert bit_mean(1.0, 4) == 0.75
    with pytest.raises(UpdateDPError, match="0/1"):
        noisy_bit_sum([1, 2], 0.0)
    with pytest.raises(UpdateDPError, match="expected_clients"):
        bit_mean(1.0, 0)


def test_bit_noise_has_the_declared_std() -> None:
    # One draw per seed: the empirical std over 4000 seeds, tolerance from the sample size.
    draws = np.array([noisy_bit_sum([0, 1], 2.5, seed=i.to_bytes(4, "little")) for i in range(4000)])
    assert abs(draws.mean()) <= 5 * 2.5 / math.sqrt(4000)
    assert abs(draws.std() / 2.5 - 1) <= 5 / math.sqrt(2 * 4000)


def test_geometric_update_formula() -> None:
    assert update_clip_norm(2.0, 0.9, 0.5, 0.2) == pytest.approx(2.0 * math.exp(-0.2 * 0.4), rel=1e-15)
    assert update_clip_norm(2.0, 0.1, 0.5, 0.2) == pytest.approx(2.0 * math.exp(0.2 * 0.4), rel=1e-15)
    assert update_clip_norm(2.0, 0.5, 0.5, 0.2) == 2.0
    with pytest.raises(UpdateDPError, match="target_quantile"):
        update_clip_norm(1.0, 0.5, 1.5, 0.2)
    with pytest.raises(UpdateDPError, match="positive finite range"):
        update_clip_norm(1.0, -1e6, 0.5, 10.0)


def test_state_step_without_noise_is_the_hand_computation() -> None:
    state = AdaptiveClipState(clip_norm=1.0, target_quantile=0.5, learning_rate=0.2, bit_noise_std=0.0,
                              expected_clients=4)
    after = state.step([1, 1, 1, 0], seed=b"t")
    assert after.clip_norm == pytest.approx(math.exp(-0.2 * (0.75 - 0.5)), rel=1e-15)
    assert after.target_quantile == 0.5 and state.clip_norm == 1.0  # frozen: a new state


@pytest.mark.parametrize("gamma", [0.3, 0.5, 0.8])
def test_adaptive_clipping_converges_to_the_target_quantile(gamma: float) -> None:
    m = 200
    rng = _rng(42)
    state = AdaptiveClipState(clip_norm=0.05, target_quantile=gamma, learning_rate=0.2, bit_noise_std=m / 20,
                              expected_clients=m)
    history = []
    for r in range(400):
        norms = rng.lognormal(mean=0.0, sigma=0.5, size=m)  # true γ-quantile: exp(0.5·Φ^-1(γ))
        bits = [clip_bit(float(n), state.clip_norm) for n in norms]
        state = state.step(bits, seed=b"round" + r.to_bytes(4, "little"))
        history.append(state.clip_norm)
    from statistics import NormalDist
    truth = math.exp(0.5 * NormalDist().inv_cdf(gamma))
    late = np.array(history[200:])
    assert abs(math.log(np.exp(np.log(late).mean()) / truth)) < 0.1  # within 10% of the true quantile
    fresh = rng.lognormal(mean=0.0, sigma=0.5, size=100_000)
    assert abs(float((fresh <= state.clip_norm).mean()) - gamma) < 0.08


def test_update_noise_multiplier_composes_back_to_z() -> None:
    # 1.2^-2 = 1.5^-2 + 2^-2: the bit query with σ_b = 1 (multiplier 2σ_b = 2) plus updates at 1.5 cost z = 1.2.
    assert update_noise_multiplier(1.2, 1.0) == pytest.approx(1.5, rel=1e-14)
    for z, sb in [(0.7, 3.0), (1.0, 5.0), (2.5, 1.3)]:
        zd = update_noise_multiplier(z, sb)
        assert zd ** -2 + (2 * sb) ** -2 == pytest.approx(z ** -2, rel=1e-12)
    with pytest.raises(UpdateDPError, match="too small"):
        update_noise_multiplier(2.0, 1.0)


def test_update_noise_multiplier_agrees_with_the_chain_accountant() -> None:
    # The chain's RDP of the two Gaussian queries, composed, equals its RDP of one query at z (q = 1).
    combined = [a + b for a, b in zip(rdp(Mechanism(Decimal("1.5"), Decimal(1), 1)),
                                      rdp(Mechanism(Decimal(2), Decimal(1), 1)), strict=True)]
    single = rdp(Mechanism(Decimal("1.2"), Decimal(1), 1))
    for a, b in zip(combined, single, strict=True):
        assert abs(a - b) <= Decimal("1e-25") * b


# ---------------------------------------------------------------- noise

def test_distributed_shares_sum_to_the_central_variance() -> None:
    n, d, sigma, c = 10, 200_000, 1.3, 0.7
    shares = [add_distributed_noise(np.zeros(d, dtype=F32), sigma, c, n, seed=b"client" + bytes([i]))
              for i in range(n)]
    total = np.sum([s.astype(np.float64) for s in shares], axis=0)
    target = (sigma * c) ** 2
    # The sample variance of d normals has relative std sqrt(2/d); 5 of those is the tolerance.
    assert abs(total.var() / target - 1) <= 5 * math.sqrt(2 / d)
    assert abs(total.mean()) <= 5 * math.sqrt(target / d)
    for s in shares[:3]:
        assert abs(s.astype(np.float64).var() / (target / n) - 1) <= 5 * math.sqrt(2 / d)


def test_overprovisioned_shares_keep_the_central_variance_after_dropouts() -> None:
    n, survivors, d, sigma, c = 10, 8, 200_000, 1.0, 1.0
    assert distributed_std(sigma, c, n, expected_survivors=survivors) == pytest.approx(1 / math.sqrt(8))
    shares = [add_distributed_noise(np.zeros(d, dtype=F32), sigma, c, n, expected_survivors=survivors,
                                    seed=b"c" + bytes([i])) for i in range(survivors)]
    total = np.sum([s.astype(np.float64) for s in shares], axis=0)
    assert abs(total.var() - 1.0) <= 5 * math.sqrt(2 / d)
    assert realized_noise_multiplier(sigma, 6, 8) == pytest.approx(math.sqrt(6 / 8))
    with pytest.raises(UpdateDPError, match="cannot exceed"):
        distributed_std(1.0, 1.0, 5, expected_survivors=6)


def test_central_noise_std_and_signal_kept() -> None:
    d = 100_000
    x = np.full(d, 3.0, dtype=F32)
    out = add_central_noise(x, 0.5, 2.0, seed=b"central")
    assert central_std(0.5, 2.0) == 1.0
    assert abs((out.astype(np.float64) - 3).var() - 1.0) <= 5 * math.sqrt(2 / d)
    assert abs(out.astype(np.float64).mean() - 3) <= 5 / math.sqrt(d)
    assert out.shape == x.shape and out.dtype == F32


def test_noise_is_deterministic_with_a_seed_and_fresh_without() -> None:
    x = np.ones(64, dtype=F32)
    a = add_distributed_noise(x, 1.0, 1.0, 4, seed=b"s")
    assert np.array_equal(a, add_distributed_noise(x, 1.0, 1.0, 4, seed=b"s"))
    assert not np.array_equal(a, add_distributed_noise(x, 1.0, 1.0, 4, seed=b"t"))
    assert not np.array_equal(add_distributed_noise(x, 1.0, 1.0, 4), add_distributed_noise(x, 1.0, 1.0, 4))
    assert gaussian_noise(0, 1.0).shape == (0,)
    with pytest.raises(UpdateDPError, match="seed must be bytes"):
        gaussian_noise(3, 1.0, seed="s")  # type: ignore[arg-type]


def test_gaussian_samples_look_gaussian() -> None:
    z = gaussian_noise(400_000, 1.0, seed=b"shape")
    n = z.shape[0]
    assert abs(z.mean()) <= 5 / math.sqrt(n)
    assert abs(z.var() - 1) <= 5 * math.sqrt(2 / n)
    assert abs(float(np.mean(z**4)) - 3) <= 5 * math.sqrt(96 / n)  # Var(z^4) = 105 − 9 = 96
    for k, p in [(1, 0.6826894921370859), (2, 0.9544997361036416), (3, 0.9973002039367398)]:
        frac = float((np.abs(z) < k).mean())
        assert abs(frac - p) <= 5 * math.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------- PRG

def test_prg_matches_its_documented_definition() -> None:
    key = hashlib.sha256(b"fedledger/prg/v1" + len(b"dom").to_bytes(2, "little") + b"dom" + b"seed").digest()
    assert derive_key(b"seed", "dom") == key
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    expected = enc.update(bytes(40))
    s = Stream(b"seed", "dom")
    assert s.read(8) + s.read(32) == expected  # a stream continues where it stopped
    words = Stream(b"seed", "dom").uint64(5)
    assert words.tolist() == [int.from_bytes(expected[8 * i:8 * i + 8], "little") for i in range(5)]
    u = Stream(b"seed", "dom").uniform(5)
    assert u.tolist() == [(w >> 11) * 2.0**-53 for w in words.tolist()]
    assert Stream(b"seed", "dom2").read(8) != expected[:8]
    u6 = Stream(b"seed", "dom").uniform(6).tolist()
    r = [math.sqrt(-2 * math.log(1 - v)) for v in u6[:3]]
    bm = [ri * math.cos(2 * math.pi * t) for ri, t in zip(r, u6[3:], strict=True)]
    bm += [ri * math.sin(2 * math.pi * t) for ri, t in zip(r, u6[3:], strict=True)]
    assert Stream(b"seed", "dom").standard_normal(5) == pytest.approx(bm[:5], rel=1e-12)
    with pytest.raises(PRGError, match="domain"):
        Stream(b"seed", "")


# ---------------------------------------------------------------- accounting

def test_declared_dp_is_what_the_chain_parses() -> None:
    body = declared_dp("1.1", "0.5")
    assert body == {"noise_multiplier": "1.1", "sample_rate": "1", "steps": 1, "clip_norm": "0.5"}
    mech, clip = parse_mechanism(body)
    assert mech == Mechanism(Decimal("1.1"), Decimal(1), 1) and Decimal(clip) == Decimal("0.5")


def test_declared_dp_rounds_conservatively() -> None:
    body = declared_dp(1.2345678, 0.1 + 0.2, sample_rate=Fraction(1, 3), rounds=3)
    assert body["noise_multiplier"] == "1.234567"  # σ rounded down
    assert body["sample_rate"] == "0.333333333334"  # q rounded up
    assert body["steps"] == 3
    assert body["clip_norm"] == "0.300000000001"  # 0.1 + 0.2 = 0.30000000000000004…, rounded up
    parse_mechanism(body)


@pytest.mark.parametrize("sigma, match", [(0.05, "refuse"), (float("nan"), "finite"), (True, "bool")])
def test_round_mechanism_refuses_what_the_chain_refuses(sigma: object, match: str) -> None:
    with pytest.raises(UpdateDPError, match=match):
        round_mechanism(sigma)  # type: ignore[arg-type]


def test_plan_charge_is_the_chain_charge_and_matches_the_gaussian_formula() -> None:
    mech = round_mechanism("2", rounds=10)
    ours = plan_charge(mech, "1e-5")
    assert ours == charge(ZERO_RDP, mech, "1e-5")
    # Independent float reference: T Gaussian mechanisms at q = 1 have RDP T·α/(2σ²); Balle et al. conversion.
    ref = min(10 * a / (2 * 4.0) + math.log((a - 1) / a) - (math.log(1e-5) + math.log(a)) / (a - 1) for a in ORDERS)
    assert ours.epsilon_micro / 1e6 == pytest.approx(ref, rel=1e-6)
    # Composing round by round on the stored curve gives the same ε as declaring 10 rounds at once.
    curve = ZERO_RDP
    for _ in range(10):
        step = plan_charge(round_mechanism("2"), "1e-5", curve)
        curve = step.rdp
    assert abs(step.epsilon_micro - ours.epsilon_micro) <= 1
