"""Robust library: coordinate-wise rules against loop references, input validation, registry, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedledger.node.robust import (
    ROBUST_RULES,
    RobustError,
    RobustParams,
    RobustResult,
    coordinate_median,
    get_robust_rule,
    norm_bound,
    trimmed_mean,
    validate_matrix,
)
from fedledger.node.robust.blocks import column_blocks, map_blocks
from tests.robust_support import ref_median, ref_outside_counts, ref_trimmed_mean


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _ties(seed: int, n: int, d: int) -> np.ndarray:
    # Few distinct values, so most coordinates have ties, including ties at the trim boundary.
    return _rng(seed).integers(-2, 3, size=(n, d)).astype(np.float32) * np.float32(0.5)


# ---------------------------------------------------------------- median and trimmed mean


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 10, 11])
def test_median_matches_reference_random(n: int) -> None:
    x = _rng(n).standard_normal((n, 37)).astype(np.float32)
    got = coordinate_median(x)
    assert got.aggregate.dtype == np.float32
    assert got.aggregate.tobytes() == ref_median(x).tobytes()


@pytest.mark.parametrize("n", [2, 5, 6, 9])
def test_median_matches_reference_with_ties(n: int) -> None:
    x = _ties(100 + n, n, 53)
    assert coordinate_median(x).aggregate.tobytes() == ref_median(x).tobytes()


def test_median_even_n_averages_the_two_middle_values() -> None:
    x = np.array([[1.0, -4.0], [4.0, 0.0], [2.0, 10.0], [100.0, 3.0]], dtype=np.float32)
    assert coordinate_median(x).aggregate.tolist() == [3.0, 1.5]


def test_median_of_extremes_does_not_overflow() -> None:
    big = np.finfo(np.float32).max
    x = np.array([[big], [big], [-big], [big]], dtype=np.float32)
    assert coordinate_median(x).aggregate[0] == big


def test_median_zero_sign_is_canonical() -> None:
    x = np.array([[-0.0], [0.0], [-0.0]], dtype=np.float32)
    out = coordinate_median(x).aggregate
    assert out.tobytes() == np.zeros(1, dtype=np.float32).tobytes()


@pytest.mark.parametrize(("n", "t"), [(3, 1), (5, 1), (6, 2), (10, 3), (11, 0), (12, 5)])
def test_trimmed_mean_matches_reference(n: int, t: int) -> None:
    x = _rng(7 * n + t).standard_normal((n, 41)).astype(np.float32)
    got = trimmed_mean(x, trim=t)
    np.testing.assert_array_max_ulp(got.aggregate, ref_trimmed_mean(x, t), maxulp=1)


@pytest.mark.parametrize(("n", "t"), [(5, 1), (6, 2), (9, 3)])
def test_trimmed_mean_with_ties(n: int, t: int) -> None:
    x = _ties(n + 10 * t, n, 60)
    np.testing.assert_array_max_ulp(trimmed_mean(x, trim=t).aggregate, ref_trimmed_mean(x, t), maxulp=1)


def test_trimmed_mean_exact_small_case() -> None:
    x = np.array([[1.0], [2.0], [3.0], [100.0], [-50.0]], dtype=np.float32)
    assert trimmed_mean(x, trim=1).aggregate.tolist() == [2.0]
    assert trimmed_mean(x, f=2).aggregate.tolist() == [2.0]


@pytest.mark.parametrize(("n", "t", "ties"), [(5, 1, False), (8, 2, False), (7, 2, True), (10, 3, True)])
def test_coordinate_verdicts_match_reference(n: int, t: int, ties: bool) -> None:
    d = 64
    x = _ties(3 * n, n, d) if ties else _rng(3 * n).standard_normal((n, d)).astype(np.float32)
    # One client far above everyone in 40 of 64 coordinates: outside there, so trimmed.
    x[0, :40] += 1000.0
    counts = ref_outside_counts(x, t)
    for result in (trimmed_mean(x, trim=t), coordinate_median(x, trim=t)):
        assert result.scores.tolist() == [c / d for c in counts]
        assert result.verdicts == tuple("trimmed" if 2 * c > d else "kept" for c in counts)
    assert trimmed_mean(x, trim=t).verdicts[0] == "trimmed"


def test_trim_zero_keeps_everyone() -> None:
    x = _rng(1).standard_normal((6, 10)).astype(np.float32)
    r = trimmed_mean(x, trim=0)
    assert r.verdicts == ("kept",) * 6 and r.scores.tolist() == [0.0] * 6
    np.testing.assert_array_max_ulp(r.aggregate, x.astype(np.float64).mean(axis=0).astype(np.float32), maxulp=1)


def test_median_verdict_default_uses_f() -> None:
    x = np.zeros((5, 4), dtype=np.float32)
    x[4] = 9.0
    assert coordinate_median(x, f=1).verdicts == ("kept",) * 4 + ("trimmed",)
    assert coordinate_median(x, f=0).verdicts == ("kept",) * 5


_small_matrices = st.integers(1, 9).flatmap(
    lambda n: st.tuples(
        hnp.arrays(
            np.float32,
            st.tuples(st.just(n), st.integers(1, 6)),
            elements=st.floats(width=32, allow_nan=False, allow_infinity=False)
            | st.sampled_from([0.0, -0.0, 1.0, -1.0]),
        ),
        st.permutations(list(range(n))),
    )
)


@settings(max_examples=60, deadline=None)
@given(_small_matrices)
def test_median_and_trimmed_mean_are_permutation_invariant(case: tuple[np.ndarray, list[int]]) -> None:
    x, perm = case
    n = x.shape[0]
    t = (n - 1) // 2
    for rule in (lambda a: coordinate_median(a, trim=t), lambda a: trimmed_mean(a, trim=t)):
        base, permuted = rule(x), rule(x[perm])
        assert base.aggregate.tobytes() == permuted.aggregate.tobytes()
        assert [base.verdicts[i] for i in perm] == list(permuted.verdicts)
        assert base.scores[perm].tobytes() == permuted.scores.tobytes()
    assert coordinate_median(x).aggregate.tobytes() == ref_median(x).tobytes()


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([[1.0, np.nan]], dtype=np.float32), r"non-finite value\(s\) \(NaN or inf\) at \(0, 1\)"),
        (np.array([[1.0], [np.inf]], dtype=np.float32), r"1 non-finite value\(s\).*\(1, 0\)"),
        (np.zeros(3, dtype=np.float32), r"2-D .*got shape \(3,\)"),
        (np.zeros((2, 2, 2), dtype=np.float32), r"2-D"),
        (np.zeros((0, 4), dtype=np.float32), r"at least one client and one coordinate"),
        (np.zeros((3, 0), dtype=np.float32), r"at least one client and one coordinate"),
        (np.array([[0.1, 0.2]], dtype=np.float64), r"float64 with values that float32 cannot represent exactly"),
        (np.array([[2**25 + 1]], dtype=np.int64), r"int64 with values that float32 cannot represent exactly"),
        (np.array([[True]]), r"real numbers"),
        (np.array([["a"]]), r"real numbers"),
        ([[1.0, 2.0]], r"must be a numpy array, got list"),
    ],
)
def test_bad_matrices_are_rejected_clearly(bad: object, message: str) -> None:
    with pytest.raises(RobustError, match=message):
        validate_matrix(bad)
    for rule in ROBUST_RULES.values():
        with pytest.raises(RobustError):
            rule(bad, RobustParams())  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_coordinate_rules_find_non_finite_values_in_any_block(bad: float) -> None:
    # The coordinate rules check finiteness on their sorted blocks, not in a separate pass.
    x = _rng(4).standard_normal((5, 70_000)).astype(np.float32)
    x[3, 65_001] = bad
    for rule in (coordinate_median, trimmed_mean):
        for threads in (1, 2):
            with pytest.raises(RobustError, match=r"x has 1 non-finite value\(s\) \(NaN or inf\) at \(3, 65001\)"):
                rule(x, f=1, threads=threads)


def test_exactly_convertible_inputs_are_accepted() -> None:
    x64 = np.array([[0.5, -2.0], [3.0, 1e10]], dtype=np.float64)
    out = validate_matrix(x64)
    assert out.dtype == np.float32 and out.tolist() == x64.tolist()
    ints = np.array([[1, 2], [3, -4]], dtype=np.int32)
    assert validate_matrix(ints).tolist() == [[1.0, 2.0], [3.0, -4.0]]
    same = np.ones((2, 3), dtype=np.float32)
    assert validate_matrix(same) is same  # no copy of an already valid matrix
    fortran = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert validate_matrix(fortran).flags.c_contiguous


@pytest.mark.parametrize(
    ("name", "n", "f", "message"),
    [
        ("median", 4, 2, r"median needs N >= 2f \+ 1 for f=2, i.e. at least 5 clients; got N=4"),
        ("trimmed_mean", 6, 3, r"trimmed_mean needs N >= 2f \+ 1 for f=3, i.e. at least 7 clients; got N=6"),
        ("krum", 6, 2, r"krum needs N > 2f \+ 2 for f=2, i.e. at least 7 clients; got N=6"),
        ("multi_krum", 4, 1, r"multi_krum needs N > 2f \+ 2 for f=1, i.e. at least 5 clients; got N=4"),
        ("bulyan", 10, 2, r"bulyan needs N >= 4f \+ 3 for f=2, i.e. at least 11 clients; got N=10"),
    ],
)
def test_too_few_clients_for_f(name: str, n: int, f: int, message: str) -> None:
    x = _rng(n).standard_normal((n, 5)).astype(np.float32)
    with pytest.raises(RobustError, match=message):
        get_robust_rule(name)(x, RobustParams(f=f))


def test_trim_too_large_and_bad_m() -> None:
    x = _rng(0).standard_normal((6, 3)).astype(np.float32)
    with pytest.raises(RobustError, match=r"trims 3 values from each end, which needs N > 2\*trim = 6; got N=6"):
        trimmed_mean(x, trim=3)
    with pytest.raises(RobustError, match=r"needs 1 <= m <= N=6; got m=7"):
        get_robust_rule("multi_krum")(x, RobustParams(f=1, m=7))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"f": -1}, r"f \(assumed Byzantine clients\) must be an integer >= 0, got -1"),
        ({"f": True}, r"f \(assumed Byzantine clients\) must be an integer"),
        ({"f": 1.5}, r"f \(assumed Byzantine clients\)"),
        ({"trim": -2}, r"trim must be an integer >= 0"),
        ({"m": 0}, r"m \(clients Multi-Krum averages\)"),
        ({"tau": 0.0}, r"tau \(clipping radius\) must be a finite number > 0"),
        ({"tau": float("nan")}, r"tau"),
        ({"iters": 0}, r"iters must be an integer >= 1"),
        ({"eps": 0.0}, r"eps must be a finite number > 0"),
        ({"tol": -1.0}, r"tol must be a finite number >= 0"),
        ({"flag_k": float("inf")}, r"flag_k"),
        ({"threads": 0}, r"threads must be an integer >= 1"),
        ({"root_update": [1.0, 2.0]}, r"root_update must be a numpy array or None, got list"),
    ],
)
def test_bad_params_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(RobustError, match=message):
        RobustParams(**kwargs)  # type: ignore[arg-type]


def test_result_checks_its_shape() -> None:
    with pytest.raises(RobustError, match="one float64 score per verdict"):
        RobustResult(np.zeros(2, np.float32), ("kept",), np.zeros(2))
    with pytest.raises(RobustError, match=r"unknown verdicts \['bad'\]"):
        RobustResult(np.zeros(2, np.float32), ("bad",), np.zeros(1))
    with pytest.raises(RobustError, match="1-D float32"):
        RobustResult(np.zeros(2, np.float64), ("kept",), np.zeros(1))


# ---------------------------------------------------------------- registry


def test_registry_names_and_unknown_rule() -> None:
    assert sorted(ROBUST_RULES) == sorted(
        ["median", "trimmed_mean", "krum", "multi_krum", "bulyan", "geomed", "centered_clipping", "fltrust"]
    )
    with pytest.raises(RobustError, match=r"unknown robust rule 'mean'; known rules: \['bulyan', 'centered_clipping'"):
        get_robust_rule("mean")


def test_every_rule_returns_a_well_formed_result() -> None:
    x = _rng(5).standard_normal((11, 30)).astype(np.float32)
    params = RobustParams(f=2, root_update=x.mean(axis=0))
    for name, rule in ROBUST_RULES.items():
        result = rule(x, params)
        assert result.aggregate.shape == (30,) and result.aggregate.dtype == np.float32, name
        assert len(result.verdicts) == 11 and result.scores.shape == (11,), name
        assert np.isfinite(result.aggregate).all(), name


# ---------------------------------------------------------------- determinism


def test_two_runs_and_any_thread_count_give_equal_bytes() -> None:
    # Wide enough for several column blocks in every pass (sort, Gram groups, sums).
    rng = _rng(11)
    x = (rng.standard_normal(70_001) + 0.05 * rng.standard_normal((13, 70_001))).astype(np.float32)
    root = x[0] + np.float32(0.01)
    for name, rule in ROBUST_RULES.items():
        runs = [rule(x, RobustParams(f=2, root_update=root, threads=t)) for t in (1, 1, 3)]
        for other in runs[1:]:
            assert other.aggregate.tobytes() == runs[0].aggregate.tobytes(), name
            assert other.scores.tobytes() == runs[0].scores.tobytes(), name
            assert other.verdicts == runs[0].verdicts, name


def test_map_blocks_keeps_block_order() -> None:
    assert column_blocks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert map_blocks(lambda s, e: (s, e), 10, 4, threads=3) == [(0, 4), (4, 8), (8, 10)]


# ---------------------------------------------------------------- norm bounding


def test_norm_bound_clips_only_long_rows() -> None:
    x = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [-6.0, 8.0]], dtype=np.float32)
    out, clipped = norm_bound(x, 1.0)
    assert clipped.tolist() == [True, False, False, True]
    expected = np.array([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0], [-0.6, 0.8]], dtype=np.float64).astype(np.float32)
    assert out.tobytes() == expected.tobytes()
    assert x[0].tolist() == [3.0, 4.0]  # the input is untouched
    same, none = norm_bound(x, 100.0)
    assert same is x and not none.any()
    with pytest.raises(RobustError, match="finite max_norm > 0"):
        norm_bound(x, 0.0)


@pytest.mark.parametrize("d", [1, 5])
def test_rules_never_modify_their_input(d: int) -> None:
    x = _rng(d).standard_normal((11, d)).astype(np.float32)
    before = x.tobytes()
    for rule in ROBUST_RULES.values():
        rule(x, RobustParams(f=2, root_update=x[0].copy()))
        assert x.tobytes() == before
