"""combine_rows and robust_delta: the aggregator's bridge from on-chain rule names to the robust library."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.node.aggregation import AggregationError, WeightedUpdate
from fedledger.node.aggregation.combine import combine_rows
from fedledger.node.aggregation.robust_delta import robust_delta


def _rows(honest: int, bad: int, d: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    good = 0.1 + rng.normal(0, 0.01, (honest, d))
    evil = np.full((bad, d), -3.0)
    return np.vstack([good, evil]).astype(np.float32)


def test_fedavg_is_the_weighted_mean_and_keeps_everyone() -> None:
    rows = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    out, verdicts = combine_rows(rows, np.array([1, 3], dtype=np.int64), "fedavg", 0)
    assert out.tolist() == [2.5, 5.0] and verdicts == ("kept", "kept")
    with pytest.raises(AggregationError, match="positive sum"):
        combine_rows(rows, np.array([0, 0], dtype=np.int64), "fedavg", 0)


@pytest.mark.parametrize("rule", ["median", "trimmed_mean", "krum", "multi_krum", "geomed", "centered_clipping"])
def test_robust_rules_resist_and_flag_sign_flipping_attackers(rule: str) -> None:
    rows = _rows(8, 2)
    out, verdicts = combine_rows(rows, np.full(10, 100, dtype=np.int64), rule, 2)
    assert np.allclose(out, 0.1, atol=0.03), (rule, out[:4])
    assert verdicts[8:] == ("flagged", "flagged"), (rule, verdicts)
    assert "flagged" not in verdicts[:8], (rule, verdicts)
    plain, _ = combine_rows(rows, np.full(10, 100, dtype=np.int64), "fedavg", 0)
    assert not np.allclose(plain, 0.1, atol=0.3)  # the attack does hurt the plain mean


def test_rule_errors_become_aggregation_errors() -> None:
    with pytest.raises(AggregationError, match="bulyan"):
        combine_rows(_rows(4, 1), np.ones(5, dtype=np.int64), "bulyan", 2)  # needs N >= 4f + 3
    with pytest.raises(AggregationError, match="N weights"):
        combine_rows(_rows(4, 1), np.ones(3, dtype=np.int64), "median", 1)


def test_robust_delta_is_order_independent_and_names_the_flagged() -> None:
    rows = _rows(5, 1, d=6)
    updates = [WeightedUpdate(f"t/1/{i:02d}", {"a": r[:2].reshape(1, 2), "b": r[2:]}, 10) for i, r in enumerate(rows)]
    delta, flagged = robust_delta(updates, "median", 1)
    again, flagged2 = robust_delta(list(reversed(updates)), "median", 1)
    assert flagged == flagged2 == ["t/1/05"]
    assert delta["a"].shape == (1, 2) and delta["b"].shape == (4,)
    assert delta["a"].tobytes() == again["a"].tobytes() and delta["b"].tobytes() == again["b"].tobytes()
    expected = np.median(rows.astype(np.float64), axis=0).astype(np.float32)
    assert np.array_equal(np.concatenate([delta["a"].ravel(), delta["b"]]), expected)
