"""Update payloads as a task's compression policy asks: encode on the client, decode on the aggregator.

A plaintext contribution's payload is either the fedledger tensor format (`sdk/tensors.py`,
no compression) or one compressed vector in the `wire` format (magic ``FLCU``), flattened in the
base model's layout (`sdk/flat.py`). Both sides call this module, so the bytes the
chain's `size` field counts are exactly what crossed the network.

Policies (the task's ``aggregation.compression``, checked on chain):
* ``None``: dense tensors;
* ``{"method": "quant8"}``: 8-bit stochastic quantization, unbiased;
* ``{"method": "topk", "fraction_ppm": p}``: the ⌈p·d/10^6⌉ largest coordinates, with error
  feedback kept by the client between rounds (what is not sent is carried to the next round).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from fedledger.sdk.compression.errors import CompressionError
from fedledger.sdk.compression.quant8 import Quantized8, dequantize8, quantize8
from fedledger.sdk.compression.sparse_mask import SharedSparseUpdate
from fedledger.sdk.compression.topk import ErrorFeedback, SparseUpdate
from fedledger.sdk.compression.wire import MAGIC, decode, encode
from fedledger.sdk.flat import Layout, flatten_model, layout_of, unflatten
from fedledger.sdk.tensors import Tensors, decode_tensors, encode_tensors

__all__ = ["UpdateEncoder", "decode_update"]


class UpdateEncoder:
    """One client's encoder for a task's policy; keeps the top-k residual across rounds."""

    def __init__(self, policy: Mapping[str, Any] | None) -> None:
        self.policy = dict(policy) if policy else None
        self._feedback: ErrorFeedback | None = None

    def encode(self, delta: Tensors) -> bytes:
        """The payload bytes of one round's delta."""
        if self.policy is None:
            return encode_tensors(delta)
        vector, _ = flatten_model(delta)
        if self.policy["method"] == "quant8":
            return encode(quantize8(vector))
        if self.policy["method"] == "topk":
            d = int(vector.shape[0])
            k = max(1, math.ceil(d * int(self.policy["fraction_ppm"]) / 1_000_000))
            if self._feedback is None or self._feedback.size != d:
                self._feedback = ErrorFeedback(d)
            return encode(self._feedback.compress(vector, k))
        raise CompressionError(f"unknown compression method {self.policy['method']!r}")


def decode_update(data: bytes, base: Mapping[str, Any]) -> Tensors:
    """Named float32 tensors from a payload in either format; compressed vectors use `base`'s layout."""
    if not data.startswith(MAGIC):
        return decode_tensors(data)
    layout: Layout = layout_of(base)
    form = decode(data)
    if isinstance(form, SparseUpdate):
        dense = form.to_dense()
    elif isinstance(form, Quantized8):
        dense = dequantize8(form)
    elif isinstance(form, SharedSparseUpdate):
        raise CompressionError("a shared-coordinate payload needs its round's coordinates; not a plaintext update")
    else:
        dense = np.asarray(form, dtype=np.float32)
    return unflatten(dense, layout)
