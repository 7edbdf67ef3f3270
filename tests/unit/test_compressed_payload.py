"""Compressed update payloads: the client's encoder and the aggregator's decoder agree, in the base layout."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.node.aggregation import AggregationError
from fedledger.sdk.compression import CompressionError
from fedledger.sdk.compression.payload import UpdateEncoder, decode_update
from fedledger.sdk.tensors import encode_tensors

BASE = {"w": np.zeros((10, 20), dtype=np.float32), "b": np.zeros(20, dtype=np.float32)}


def _delta(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"w": rng.normal(0, 1, (10, 20)).astype(np.float32), "b": rng.normal(0, 1, 20).astype(np.float32)}


def test_no_policy_is_the_tensor_format() -> None:
    delta = _delta(0)
    data = UpdateEncoder(None).encode(delta)
    assert data == encode_tensors(delta)
    back = decode_update(data, BASE)
    assert all(np.array_equal(back[k], delta[k]) for k in delta)


def test_quant8_round_trip_is_close_and_a_quarter_of_the_size() -> None:
    delta = _delta(1)
    data = UpdateEncoder({"method": "quant8"}).encode(delta)
    back = decode_update(data, BASE)
    assert back["w"].shape == (10, 20) and back["b"].shape == (20,)
    span = max(float(np.ptp(delta["w"])), float(np.ptp(delta["b"])))
    assert all(np.abs(back[k] - delta[k]).max() <= span / 255 + 1e-6 for k in delta)
    assert len(data) < len(encode_tensors(delta)) / 3


def test_topk_sends_the_largest_and_carries_the_rest_to_the_next_round() -> None:
    enc = UpdateEncoder({"method": "topk", "fraction_ppm": 100_000})  # 10% of 220 -> 22 coordinates
    delta = _delta(2)
    first = decode_update(enc.encode(delta), BASE)
    flat = np.concatenate([delta["b"], delta["w"].ravel()])  # sorted names: b, then w
    sent = np.concatenate([first["b"], first["w"].ravel()])
    assert np.count_nonzero(sent) == 22
    assert np.min(np.abs(flat[sent != 0])) >= np.max(np.abs(flat[sent == 0]))
    zero = {k: np.zeros_like(v) for k, v in delta.items()}
    second = decode_update(enc.encode(zero), BASE)  # nothing new: it sends what was held back
    resent = np.concatenate([second["b"], second["w"].ravel()])
    assert np.count_nonzero(resent) == 22 and not np.any((resent != 0) & (sent != 0))


def test_garbage_and_wrong_layout_are_clear_errors() -> None:
    data = UpdateEncoder({"method": "quant8"}).encode(_delta(3))
    with pytest.raises(CompressionError):
        decode_update(data[:-5], BASE)
    with pytest.raises(AggregationError, match="layout needs"):
        decode_update(data, {"w": np.zeros(3, dtype=np.float32)})
