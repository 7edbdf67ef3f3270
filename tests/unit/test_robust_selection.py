"""Robust library: distances, Krum family, geometric median, centered clipping, FLTrust and guards vs references."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.node.robust import (
    RobustError,
    RobustParams,
    bulyan,
    centered_clipping,
    closest_to_median_mean,
    cosine_guard,
    cosine_scores,
    flag_below,
    fltrust,
    geometric_median,
    get_robust_rule,
    gram_matrix,
    krum,
    median_vector,
    multi_krum,
    sq_distances,
)
from fedledger.node.robust.distances import GRAM_BITS, GRAM_CHUNK
from tests.robust_support import (
    ref_bulyan,
    ref_centered_clipping,
    ref_cosines,
    ref_fltrust,
    ref_geomed,
    ref_krum,
    ref_median,
    ref_multi_krum,
    ref_sq_distances,
)


def _data(seed: int, n: int, d: int, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (offset * rng.standard_normal(d) + rng.standard_normal((n, d))).astype(np.float32)


# ---------------------------------------------------------------- distances


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_distances_match_pairwise_loop(offset: float) -> None:
    x = _data(1, 9, 5000, offset)
    ref = ref_sq_distances(x)
    got = sq_distances(x)
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 0.0)
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=0)


def test_gram_is_the_exact_gram_of_the_quantized_rows() -> None:
    # Rebuild the documented quantization independently and multiply in exact integers.
    x = _data(2, 6, GRAM_CHUNK + 123, 3.0)
    center = x.astype(np.float64).mean(axis=0)
    expected = np.zeros((6, 6))
    for lo in range(0, x.shape[1], GRAM_CHUNK):
        y = x[:, lo : lo + GRAM_CHUNK].astype(np.float64) - center[lo : lo + GRAM_CHUNK]
        exps = [int(np.frexp(np.abs(row).max())[1]) for row in y]
        q = np.stack([np.rint(row * 2.0 ** (GRAM_BITS - e)) for row, e in zip(y, exps, strict=True)]).astype(np.int64)
        exact = q @ q.T  # int64: no rounding at all
        scale = np.array([2.0 ** (e - GRAM_BITS) for e in exps])
        expected += exact.astype(np.float64) * scale[:, None] * scale[None, :]
    assert gram_matrix(x, center).tobytes() == expected.tobytes()


def test_duplicate_rows_have_exactly_equal_distances() -> None:
    x = _data(3, 8, 3000)
    x[5] = x[2]
    dist = sq_distances(x)
    assert dist[2, 5] == 0.0
    assert np.array_equal(np.delete(dist[2], [2, 5]), np.delete(dist[5], [2, 5]))


# ---------------------------------------------------------------- Krum and Multi-Krum


@pytest.mark.parametrize(("n", "f"), [(5, 1), (7, 2), (10, 2), (13, 5)])
def test_krum_matches_reference(n: int, f: int) -> None:
    x = _data(n + f, n, 200)
    best, scores = ref_krum(x, f)
    got = krum(x, f)
    np.testing.assert_allclose(got.scores, scores, rtol=1e-6)
    assert got.aggregate.tobytes() == x[best].tobytes()
    assert got.verdicts == tuple("kept" if i == best else "flagged" for i in range(n))


def test_krum_ties_go_to_the_lowest_index() -> None:
    base = _data(4, 1, 50)[0]
    x = np.stack([base + 5, base, base, base, base - 5, base + 9]).astype(np.float32)
    got = krum(x, 1)
    assert got.verdicts == ("flagged", "kept", "flagged", "flagged", "flagged", "flagged")
    assert got.scores[1] == got.scores[2] == got.scores[3]


@pytest.mark.parametrize(("n", "f", "m"), [(7, 2, None), (10, 1, 4), (9, 3, 1), (12, 2, 12)])
def test_multi_krum_matches_reference(n: int, f: int, m: int | None) -> None:
    x = _data(3 * n + f, n, 150)
    count = n - f if m is None else m
    picked, mean = ref_multi_krum(x, f, count)
    got = multi_krum(x, f, m)
    np.testing.assert_array_max_ulp(got.aggregate, mean, maxulp=1)
    assert got.verdicts == tuple("kept" if i in picked else "flagged" for i in range(n))


def test_multi_krum_ties_at_the_boundary_keep_lower_indices() -> None:
    base = _data(5, 1, 40)[0]
    x = np.stack([base, base + 50, base, base, base - 50]).astype(np.float32)
    got = multi_krum(x, 1, 2)
    assert got.verdicts == ("kept", "flagged", "kept", "flagged", "flagged")


# ---------------------------------------------------------------- Bulyan


@pytest.mark.parametrize(
    ("n", "f", "seed"),
    [(3, 0, 1), (4, 0, 2), (7, 1, 3), (8, 1, 4), (11, 2, 5), (12, 2, 6), (15, 3, 7), (20, 4, 8), (23, 5, 9)],
)
def test_bulyan_matches_reference(n: int, f: int, seed: int) -> None:
    x = _data(seed, n, 60)
    x[: max(1, f // 2)] *= 8.0  # some outliers so the selection is not trivial
    picked, expected = ref_bulyan(x, f)
    got = bulyan(x, f)
    assert got.verdicts == tuple("kept" if i in picked else "flagged" for i in range(n))
    np.testing.assert_array_max_ulp(got.aggregate, expected, maxulp=1)


@pytest.mark.parametrize(("n", "f", "seed"), [(7, 1, 10), (11, 2, 11), (16, 3, 12)])
def test_bulyan_with_ties(n: int, f: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, size=(n, 40)) * 0.25).astype(np.float32)
    x[3] = x[1]  # duplicate clients: equal scores, lowest index first
    picked, expected = ref_bulyan(x, f)
    got = bulyan(x, f)
    assert got.verdicts == tuple("kept" if i in picked else "flagged" for i in range(n))
    np.testing.assert_array_max_ulp(got.aggregate, expected, maxulp=1)


@pytest.mark.parametrize("k", [1, 2, 5, 8, 13])
def test_closest_to_median_mean_for_every_beta(k: int) -> None:
    rng = np.random.default_rng(k)
    x = (rng.integers(-3, 4, size=(k + 2, 300)) * 0.5).astype(np.float32)  # ties everywhere
    x[:, :100] = rng.standard_normal((k + 2, 100)).astype(np.float32)  # and none here
    rows = np.arange(1, k + 1)
    for beta in range(1, k + 1):
        expected = np.empty(300, dtype=np.float32)
        for j in range(300):
            vals = sorted(float(v) for v in x[rows, j])
            m = (vals[(k - 1) // 2] + vals[k // 2]) / 2
            expected[j] = sum(sorted(vals, key=lambda v: (abs(v - m), v))[:beta]) / beta + 0.0
        np.testing.assert_array_max_ulp(closest_to_median_mean(x, rows, beta), expected, maxulp=1)


def test_bulyan_scores_are_the_krum_scores() -> None:
    x = _data(13, 11, 80)
    assert np.array_equal(bulyan(x, 2).scores, krum(x, 2).scores)


# ---------------------------------------------------------------- geometric median


def test_geomed_matches_weiszfeld_reference() -> None:
    x = _data(20, 9, 300, 2.0)
    got = geometric_median(x, iters=300, tol=0.0)
    np.testing.assert_allclose(got.aggregate, ref_geomed(x, 300, 1e-8), rtol=1e-5, atol=1e-6)


def test_geomed_flags_far_rows_with_median_mad_rule() -> None:
    x = _data(21, 20, 400) * np.float32(0.1)
    x[[4, 17]] += np.float32(3.0)
    got = geometric_median(x)
    dist = np.sqrt(((x.astype(np.float64) - got.aggregate.astype(np.float64)) ** 2).sum(axis=1))
    np.testing.assert_allclose(got.scores, dist, rtol=1e-5)
    med = np.median(dist)
    limit = med + 3.0 * 1.4826 * np.median(np.abs(dist - med))
    assert got.verdicts == tuple("flagged" if v > limit else "kept" for v in dist)
    assert [i for i, v in enumerate(got.verdicts) if v == "flagged"] == [4, 17]


def test_geomed_of_one_client_is_that_client() -> None:
    x = _data(22, 1, 10)
    got = geometric_median(x)
    assert got.aggregate.tobytes() == x[0].tobytes() and got.verdicts == ("kept",)


# ---------------------------------------------------------------- centered clipping


def test_centered_clipping_matches_reference_given_tau_and_center() -> None:
    x = _data(30, 12, 250, 1.0)
    x[:2] *= 20.0
    start = x[5] * np.float32(0.5)
    got = centered_clipping(x, tau=4.0, iters=5, center=start)
    expected = ref_centered_clipping(x, 4.0, 5, start)
    np.testing.assert_allclose(got.aggregate, expected, rtol=1e-5, atol=1e-5)
    dist = np.sqrt(((x.astype(np.float64) - expected) ** 2).sum(axis=1))
    np.testing.assert_allclose(got.scores, dist, rtol=1e-5)
    assert got.verdicts == tuple("trimmed" if v > 4.0 else "kept" for v in dist)


def test_centered_clipping_defaults_median_center_and_median_radius() -> None:
    x = _data(31, 9, 120)
    start = ref_median(x)
    tau = float(np.median(np.sqrt(((x.astype(np.float64) - start.astype(np.float64)) ** 2).sum(axis=1))))
    got = get_robust_rule("centered_clipping")(x, RobustParams())
    np.testing.assert_allclose(got.aggregate, ref_centered_clipping(x, tau, 3, start), rtol=1e-5, atol=1e-6)


def test_centered_clipping_center_shape_is_checked() -> None:
    x = _data(32, 5, 8)
    with pytest.raises(RobustError, match=r"center must have shape \(8,\) to match x, got \(7,\)"):
        centered_clipping(x, center=np.zeros(7, dtype=np.float32))


# ---------------------------------------------------------------- FLTrust


def test_fltrust_matches_reference() -> None:
    x = _data(40, 10, 300, 1.0)
    x[1] = -x[1]  # negative cosine: trust 0
    x[2] *= 30.0  # large norm: rescaled to |g0|
    x[3] = 0.0  # no direction: trust 0
    g0 = (x[4] + x[5]) * np.float32(0.5)
    expected, trust = ref_fltrust(x, g0)
    got = get_robust_rule("fltrust")(x, RobustParams(root_update=g0))
    np.testing.assert_allclose(got.aggregate, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.scores, trust, rtol=1e-9, atol=1e-12)
    assert got.verdicts == tuple("kept" if t > 0 else "flagged" for t in trust)
    assert got.verdicts[1] == got.verdicts[3] == "flagged"


def test_fltrust_with_no_trusted_client_returns_zero() -> None:
    x = np.abs(_data(41, 4, 20))
    got = fltrust(x, -x[0])  # every dot product is negative: nobody is trusted
    assert got.verdicts == ("flagged",) * 4 and got.scores.tolist() == [0.0] * 4
    assert got.aggregate.tobytes() == np.zeros(20, np.float32).tobytes()


def test_fltrust_needs_a_nonzero_root_update() -> None:
    x = _data(42, 4, 6)
    with pytest.raises(RobustError, match=r"fltrust needs the server's root update \(RobustParams.root_update\)"):
        get_robust_rule("fltrust")(x, RobustParams())
    with pytest.raises(RobustError, match="nonzero root update"):
        fltrust(x, np.zeros(6, dtype=np.float32))
    with pytest.raises(RobustError, match=r"root_update has 1 non-finite"):
        fltrust(x, np.array([1, 2, 3, np.nan, 5, 6], dtype=np.float32))


# ---------------------------------------------------------------- guards


def test_cosine_scores_against_the_median() -> None:
    x = _data(50, 8, 100, 2.0)
    x[6] = -x[6]
    got = cosine_scores(x)
    np.testing.assert_allclose(got, ref_cosines(x, ref_median(x)), rtol=1e-9, atol=1e-12)
    assert np.array_equal(median_vector(x), ref_median(x))
    scores, verdicts = cosine_guard(x, threshold=0.0)
    assert verdicts == tuple("flagged" if s < 0 else "kept" for s in scores) and verdicts[6] == "flagged"


def test_flag_below_and_zero_vectors() -> None:
    assert flag_below(np.array([0.5, -0.1, 0.2]), 0.2) == ("kept", "flagged", "kept")
    x = np.zeros((3, 4), dtype=np.float32)
    assert cosine_scores(x).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(RobustError, match=r"in \[-1, 1\]"):
        cosine_guard(x, threshold=2.0)


def test_bulyan_incremental_rescoring_matches_fresh_rescoring_on_many_inputs() -> None:
    # Clustered clients reorder each other's neighbour lists as clients leave the remaining set.
    rng = np.random.default_rng(99)
    for trial in range(25):
        f = int(rng.integers(0, 4))
        n = 4 * f + 3 + int(rng.integers(0, 6))
        centers = rng.standard_normal((3, 12)) * 3
        x = (centers[rng.integers(0, 3, n)] + rng.standard_normal((n, 12))).astype(np.float32)
        picked, expected = ref_bulyan(x, f)
        got = bulyan(x, f)
        assert got.verdicts == tuple("kept" if i in picked else "flagged" for i in range(n)), trial
        np.testing.assert_array_max_ulp(got.aggregate, expected, maxulp=1)
