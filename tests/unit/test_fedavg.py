import itertools
from typing import Any

import numpy as np
import pytest

from fedledger.node.aggregation import (
    RULES,
    AggregationError,
    AggregationRule,
    WeightedUpdate,
    aggregate,
    apply_delta,
    get_rule,
)

NOT_AN_INT: Any = 1.5


def _u(cid: str, n: int, **tensors: list[float]) -> WeightedUpdate:
    return WeightedUpdate(cid, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}, n)


def test_matches_hand_computed_weighted_mean() -> None:
    updates = [
        _u("a", 1, w=[1.0, 2.0], b=[0.0]),
        _u("b", 3, w=[5.0, -2.0], b=[4.0]),
    ]
    out = aggregate(updates)
    # w: (1*[1,2] + 3*[5,-2]) / 4 = [4, -1]; b: (0 + 12) / 4 = 3
    assert out["w"].dtype == np.float32 and out["b"].dtype == np.float32
    np.testing.assert_array_equal(out["w"], np.array([4.0, -1.0], np.float32))
    np.testing.assert_array_equal(out["b"], np.array([3.0], np.float32))


def test_zero_weight_update_is_ignored() -> None:
    out = aggregate([_u("a", 2, w=[1.0]), _u("b", 0, w=[100.0])])
    np.testing.assert_array_equal(out["w"], np.array([1.0], np.float32))


def test_single_update_returns_its_delta() -> None:
    rng = np.random.default_rng(1)
    t = {"w": rng.standard_normal((3, 4)).astype(np.float32)}
    np.testing.assert_array_equal(aggregate([WeightedUpdate("x", t, 7)])["w"], t["w"])


def test_order_independent_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    updates = [
        WeightedUpdate(
            f"c{i}",
            {
                "w": (rng.standard_normal((16, 8)) * 10.0 ** int(rng.integers(-6, 6))).astype(np.float32),
                "b": rng.standard_normal(8).astype(np.float32),
            },
            int(rng.integers(1, 500)),
        )
        for i in range(5)
    ]
    reference = aggregate(updates)
    for perm in itertools.permutations(updates):
        out = aggregate(list(perm))
        for name in reference:
            assert out[name].tobytes() == reference[name].tobytes()


def test_order_independent_under_cancellation() -> None:
    # Float sums are not associative: (1e30 - 1e30) + 1 != (1e30 + 1) - 1e30. A rule that summed in
    # arrival order would give different bits for different orders here; ours must not.
    updates = [_u("a", 1, w=[1e30]), _u("b", 1, w=[-1e30]), _u("c", 1, w=[1.0])]
    naive = set()
    for perm in itertools.permutations([1e30, -1e30, 1.0]):
        acc = 0.0
        for v in perm:
            acc += v
        naive.add(acc)
    assert len(naive) > 1  # the case really is order-sensitive
    results = {aggregate(list(perm))["w"].tobytes() for perm in itertools.permutations(updates)}
    assert len(results) == 1
    # Sorted order a, b, c: (1e30 - 1e30 + 1) / 3.
    np.testing.assert_array_equal(aggregate(updates)["w"], np.array([1 / 3], np.float32))


def test_close_to_float64_reference() -> None:
    rng = np.random.default_rng(2)
    ts = [rng.standard_normal(100).astype(np.float32) for _ in range(4)]
    ns = [10, 20, 30, 40]
    pairs = list(zip(ts, ns, strict=True))
    out = aggregate([WeightedUpdate(str(i), {"w": t}, n) for i, (t, n) in enumerate(pairs)])
    expected = sum(t.astype(np.float64) * n for t, n in zip(ts, ns, strict=True)) / sum(ns)
    np.testing.assert_allclose(out["w"], expected, rtol=1e-6, atol=1e-7)


def test_inputs_are_not_modified() -> None:
    u = _u("a", 2, w=[1.0, 2.0])
    before = u.tensors["w"].copy()
    aggregate([u, _u("b", 1, w=[3.0, 3.0])])
    np.testing.assert_array_equal(u.tensors["w"], before)


@pytest.mark.parametrize(
    "updates, message",
    [
        ([], "no updates"),
        ([_u("a", 0, w=[1.0]), _u("b", 0, w=[2.0])], "zero"),
        ([_u("a", 1, w=[1.0]), _u("b", 1, v=[1.0])], "different tensor names"),
        ([_u("a", 1, w=[1.0]), _u("b", 1, w=[1.0], v=[1.0])], "different tensor names"),
        ([_u("a", 1, w=[1.0]), _u("b", 1, w=[1.0, 2.0])], "shape"),
        ([_u("a", 1, w=[1.0]), _u("a", 1, w=[2.0])], "duplicate"),
        ([_u("a", -1, w=[1.0])], "negative"),
        ([WeightedUpdate("a", {"w": np.ones(1, np.float32)}, NOT_AN_INT)], "int"),
        ([WeightedUpdate("a", {"w": np.ones(1, np.float32)}, True)], "int"),
        ([WeightedUpdate("", {"w": np.ones(1, np.float32)}, 1)], "contribution_id"),
        ([_u("a", 1)], "no tensors"),
        ([_u("a", 1, w=[float("nan")])], "NaN"),
        (["not an update"], "WeightedUpdate"),
    ],
)
def test_errors(updates: list[Any], message: str) -> None:
    with pytest.raises(AggregationError, match=message):
        aggregate(updates)


def test_apply_delta() -> None:
    base = {"w": np.array([1.0, 2.0], np.float32), "b": np.array([0.5], np.float32)}
    delta = {"w": np.array([0.5, -1.0], np.float32), "b": np.array([0.25], np.float32)}
    out = apply_delta(base, delta)
    np.testing.assert_array_equal(out["w"], np.array([1.5, 1.0], np.float32))
    np.testing.assert_array_equal(out["b"], np.array([0.75], np.float32))
    assert out["w"].dtype == np.float32
    np.testing.assert_array_equal(base["w"], np.array([1.0, 2.0], np.float32))  # base untouched


@pytest.mark.parametrize(
    "delta, message",
    [
        ({"w": np.zeros(3, np.float32)}, "shape"),
        ({"v": np.zeros(2, np.float32)}, "missing"),
        ({"w": np.zeros(2, np.float32), "v": np.zeros(1, np.float32)}, "extra"),
        ({"w": np.array([np.finfo(np.float32).max, 0], np.float32)}, "not finite"),
    ],
)
def test_apply_delta_errors(delta: dict[str, Any], message: str) -> None:
    base = {"w": np.array([np.finfo(np.float32).max, 1.0], np.float32)}
    with pytest.raises(AggregationError, match=message):
        apply_delta(base, delta)


def test_rule_registry() -> None:
    rule: AggregationRule = get_rule("fedavg")
    assert rule is aggregate
    assert "fedavg" in RULES
    with pytest.raises(AggregationError, match="known rules"):
        get_rule("median-of-vibes")


def test_aggregation_side_never_imports_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fedledger.node.aggregation, fedledger.sdk.tensors, fedledger.sdk.ml.data; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
