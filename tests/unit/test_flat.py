import numpy as np
import pytest

from fedledger.node.aggregation import AggregationError
from fedledger.sdk.flat import flatten, flatten_model, layout_of, stack, unflatten

F32 = np.float32


def test_flatten_round_trip_in_sorted_name_order() -> None:
    t = {"z": np.arange(6, dtype=F32).reshape(2, 3), "a": np.array([9.0], dtype=F32)}
    v, layout = flatten_model(t)
    assert v.tolist() == [9.0, 0, 1, 2, 3, 4, 5] and layout == (("a", (1,)), ("z", (2, 3)))
    back = unflatten(v, layout)
    assert back["z"].shape == (2, 3) and np.array_equal(back["z"], t["z"]) and back["a"].dtype == F32
    with pytest.raises(AggregationError, match="needs 7"):
        unflatten(v[:-1], layout)


def test_stack_rows_and_layout_mismatches() -> None:
    a = {"w": np.ones((2, 2), dtype=F32), "b": np.zeros(1, dtype=F32)}
    b = {"w": np.full((2, 2), 2.0, dtype=F32), "b": np.ones(1, dtype=F32)}
    m = stack([a, b], layout_of(a))
    assert m.shape == (2, 5) and m[1].tolist() == [1.0, 2, 2, 2, 2]
    with pytest.raises(AggregationError, match="differ from the layout"):
        flatten({"w": a["w"]}, layout_of(a))
    with pytest.raises(AggregationError, match="shape"):
        flatten({"w": np.ones(4, dtype=F32), "b": a["b"]}, layout_of(a))
    with pytest.raises(AggregationError, match="at least one"):
        flatten_model({})
