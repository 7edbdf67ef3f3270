"""Named tensors ⇄ one flat float32 vector, in sorted-name order, so (N, d) libraries can work on models.

The robust aggregators and SecAgg work on `(N, d)` arrays. A model is a dict of named tensors;
this module fixes one layout (names sorted, each tensor row-major) and converts both ways.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ProtocolError
from fedledger.sdk.tensors import Tensors

__all__ = ["AggregationError", "Layout", "flatten", "flatten_model", "layout_of", "stack", "unflatten"]

Layout = tuple[tuple[str, tuple[int, ...]], ...]


class AggregationError(ProtocolError):
    """Updates cannot be combined (none given, mismatched tensors, bad weights, non-finite values)."""

    error_code = "AGGREGATION"


def layout_of(tensors: Mapping[str, npt.NDArray[Any]]) -> Layout:
    """The layout of a model: (name, shape) pairs in sorted-name order."""
    return tuple((name, tuple(np.shape(tensors[name]))) for name in sorted(tensors))


def _size(layout: Layout) -> int:
    return sum(int(np.prod(shape, dtype=np.int64)) for _, shape in layout)


def flatten(tensors: Mapping[str, npt.NDArray[Any]], layout: Layout) -> npt.NDArray[np.float32]:
    """One float32 vector of the tensors in `layout` order; AggregationError if names or shapes differ."""
    if sorted(tensors) != [name for name, _ in layout]:
        raise AggregationError(f"tensor names {sorted(tensors)} differ from the layout {[n for n, _ in layout]}")
    parts = []
    for name, shape in layout:
        arr = np.asarray(tensors[name], dtype=np.float32)
        if arr.shape != shape:
            raise AggregationError(f"tensor {name!r} has shape {arr.shape}, expected {shape}")
        parts.append(arr.reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def flatten_model(tensors: Mapping[str, npt.NDArray[Any]]) -> tuple[npt.NDArray[np.float32], Layout]:
    """A model as (vector, layout): its own layout, then flatten."""
    if not tensors:
        raise AggregationError("a model needs at least one tensor")
    layout = layout_of(tensors)
    return flatten(tensors, layout), layout


def stack(models: Sequence[Mapping[str, npt.NDArray[Any]]], layout: Layout) -> npt.NDArray[np.float32]:
    """An (N, d) float32 matrix, one flattened model per row, written in place without temporaries."""
    out = np.empty((len(models), _size(layout)), dtype=np.float32)
    for i, model in enumerate(models):
        out[i] = flatten(model, layout)
    return out


def unflatten(vector: npt.NDArray[Any], layout: Layout) -> Tensors:
    """Named float32 tensors from a flat vector in `layout` order."""
    vec = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vec.shape[0] != _size(layout):
        raise AggregationError(f"vector has {vec.shape[0]} values, the layout needs {_size(layout)}")
    out: Tensors = {}
    offset = 0
    for name, shape in layout:
        n = int(np.prod(shape, dtype=np.int64))
        out[name] = vec[offset:offset + n].reshape(shape).copy()
        offset += n
    return out
