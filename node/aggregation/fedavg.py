"""FedAvg: the example-weighted mean of client deltas, computed deterministically in numpy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.flat import AggregationError
from fedledger.sdk.tensors import Tensors

__all__ = [
    "AggregationError",
    "WeightedUpdate",
    "aggregate",
    "apply_delta",
    "validate_updates",
]



# eq=False: field-wise == on numpy arrays is ambiguous, so identity equality is the honest choice.
@dataclass(frozen=True, eq=False)
class WeightedUpdate:
    """One participant's weight delta for a round, weighted by the number of examples it trained on."""

    contribution_id: str
    tensors: Tensors
    num_examples: int


def validate_updates(
    updates: Sequence[WeightedUpdate],
) -> tuple[list[WeightedUpdate], dict[str, tuple[int, ...]]]:
    """Check that updates can be aggregated; return them sorted by contribution_id plus the common layout.

    Sorting gives every aggregation rule one fixed summation order, which makes the float result
    identical bit for bit whatever order the updates arrived in.
    """
    if len(updates) == 0:
        raise AggregationError("no updates to aggregate")
    for update in updates:
        if not isinstance(update, WeightedUpdate):
            raise AggregationError(f"expected WeightedUpdate, got {type(update).__name__}")
        if not isinstance(update.contribution_id, str) or not update.contribution_id:
            raise AggregationError(
                f"contribution_id must be a non-empty string, got {update.contribution_id!r}"
            )
        # bool is an int subclass, but True examples is certainly a bug.
        if isinstance(update.num_examples, bool) or not isinstance(update.num_examples, int):
            raise AggregationError(
                f"update {update.contribution_id!r}: num_examples must be an int, "
                f"got {type(update.num_examples).__name__}"
            )
        if update.num_examples < 0:
            raise AggregationError(f"update {update.contribution_id!r}: num_examples is negative")
    ordered = sorted(updates, key=lambda u: u.contribution_id)
    for first, second in zip(ordered, ordered[1:], strict=False):
        if first.contribution_id == second.contribution_id:
            # With two updates under one id the sort could not fix their order.
            raise AggregationError(f"duplicate contribution_id {first.contribution_id!r}")

    reference = ordered[0]
    if not reference.tensors:
        raise AggregationError(f"update {reference.contribution_id!r} has no tensors")
    layout = {name: tuple(np.shape(arr)) for name, arr in sorted(reference.tensors.items())}
    for update in ordered:
        names = sorted(update.tensors)
        if names != list(layout):
            missing = sorted(set(layout) - set(names))
            extra = sorted(set(names) - set(layout))
            raise AggregationError(
                f"update {update.contribution_id!r} has different tensor names than "
                f"{reference.contribution_id!r} (missing {missing}, extra {extra})"
            )
        for name, shape in layout.items():
            arr = np.asarray(update.tensors[name])
            if arr.shape != shape:
                raise AggregationError(
                    f"update {update.contribution_id!r}: tensor {name!r} has shape {arr.shape}, "
                    f"expected {shape}"
                )
            if arr.dtype.kind not in "fiu":
                raise AggregationError(f"update {update.contribution_id!r}: tensor {name!r} is not numeric")
            if not np.isfinite(arr).all():
                raise AggregationError(f"update {update.contribution_id!r}: tensor {name!r} has NaN/Inf")
    return ordered, layout


def aggregate(updates: Sequence[WeightedUpdate]) -> Tensors:
    """Return the example-weighted mean of the updates' tensors as float32.

    Sums run in float64 in contribution_id order, so equal inputs give identical bytes.
    """
    ordered, layout = validate_updates(updates)
    total = sum(u.num_examples for u in ordered)
    if total == 0:
        raise AggregationError("total num_examples is zero; the weighted mean is undefined")
    result: Tensors = {}
    for name, shape in layout.items():
        acc = np.zeros(shape, dtype=np.float64)
        for update in ordered:
            acc += np.asarray(update.tensors[name], dtype=np.float64) * float(update.num_examples)
        result[name] = (acc / float(total)).astype(np.float32)
    return result


def apply_delta(base: Mapping[str, npt.NDArray[Any]], delta: Mapping[str, npt.NDArray[Any]]) -> Tensors:
    """Return base + delta as float32 tensors; names and shapes must match exactly."""
    if sorted(base) != sorted(delta):
        missing = sorted(set(base) - set(delta))
        extra = sorted(set(delta) - set(base))
        raise AggregationError(f"delta does not match base weights (missing {missing}, extra {extra})")
    out: Tensors = {}
    for name in sorted(base):
        b = np.asarray(base[name], dtype=np.float32)
        d = np.asarray(delta[name], dtype=np.float32)
        if b.shape != d.shape:
            raise AggregationError(f"tensor {name!r}: base shape {b.shape} != delta shape {d.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            summed = b + d
        if not np.isfinite(summed).all():
            raise AggregationError(f"tensor {name!r}: base + delta is not finite")
        out[name] = summed
    return out
