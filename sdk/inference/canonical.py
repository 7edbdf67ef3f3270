"""The canonical forms clients and nodes agree on: the input's hash, and the quantized output and its hash.

Input hash: sha256 over the input tensors sorted by name, each as its name, dtype, shape and raw
little-endian C-order bytes, so any two parties holding the same arrays get the same digest.

Output: every value x of every output tensor (sorted by name) becomes the integer
round(x * 2^QUANT_BITS) (half to even, clipped to +-2^31; NaN becomes 2^31, +-inf the clip
bounds). The output hash is sha256 over each tensor's name, shape and those integers as
little-endian int64. The integers travel in the receipt (`q`) when there are at most MAX_Q of
them, so the chain can compare two outputs within abci_app/modules/inference/receipts.TOLERANCE.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.modules.inference.receipts import MAX_Q, QUANT_BITS

__all__ = ["CanonicalOutput", "canonical_output", "input_hash"]

_LIMIT = 2**31


def input_hash(inputs: Mapping[str, npt.NDArray[Any]]) -> str:
    """sha256 hex of the canonical input tensors (see the module docstring)."""
    h = hashlib.sha256(b"fedledger-inference-input-v1\n")
    for name in sorted(inputs):
        arr = np.ascontiguousarray(inputs[name])
        arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        h.update(b"%d:%s|%s|%s|" % (len(name), name.encode(), arr.dtype.str.encode(),
                                     ",".join(str(d) for d in arr.shape).encode()))
        h.update(arr.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CanonicalOutput:
    """An output in canonical form: its hash and, when small enough, its quantized values."""

    output_hash: str
    q: tuple[int, ...] | None
    size: int


def _quantize(arr: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    x = np.asarray(arr, dtype=np.float64) * float(2**QUANT_BITS)
    if np.isfinite(x).all() and (x.size == 0 or float(np.abs(x).max()) < _LIMIT):
        fast: npt.NDArray[np.int64] = np.rint(x).astype(np.int64)  # the common case, on every answer's path
        return fast
    nan = np.isnan(x)
    q: npt.NDArray[np.int64] = np.rint(np.clip(np.where(nan, 0.0, x), -_LIMIT, _LIMIT)).astype(np.int64)
    q[nan] = _LIMIT
    return q


def canonical_output(outputs: Mapping[str, npt.NDArray[Any]]) -> CanonicalOutput:
    """Quantize and hash a model's outputs (see the module docstring)."""
    h = hashlib.sha256(b"fedledger-inference-output-v1\n")
    parts: list[npt.NDArray[np.int64]] = []
    for name in sorted(outputs):
        q = _quantize(outputs[name])
        h.update(b"%d:%s|%s|" % (len(name), name.encode(), ",".join(str(d) for d in q.shape).encode()))
        h.update(q.astype("<i8").tobytes())
        parts.append(q.reshape(-1))
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    small = 0 < flat.size <= MAX_Q
    return CanonicalOutput(output_hash=h.hexdigest(), q=tuple(flat.tolist()) if small else None,
                           size=int(flat.size))
