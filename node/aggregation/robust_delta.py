"""A robust rule over plaintext client updates: stack the models, combine the rows, unflatten the result."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedledger.node.aggregation.combine import combine_rows
from fedledger.node.aggregation.fedavg import WeightedUpdate, validate_updates
from fedledger.node.aggregation.fedavg import aggregate as fedavg
from fedledger.sdk.flat import layout_of, stack, unflatten
from fedledger.sdk.tensors import Tensors

__all__ = ["plaintext_delta", "robust_delta"]


def robust_delta(updates: Sequence[WeightedUpdate], rule: str, byzantine: int) -> tuple[Tensors, list[str]]:
    """The rule's aggregate of the updates, and the contribution ids it flagged.

    Rows are in contribution_id order (validate_updates sorts), so the result does not depend on
    the order the payloads arrived in.
    """
    ordered, _ = validate_updates(updates)
    layout = layout_of(ordered[0].tensors)
    rows = stack([u.tensors for u in ordered], layout)
    weights = np.asarray([u.num_examples for u in ordered], dtype=np.int64)
    vector, verdicts = combine_rows(rows, weights, rule, byzantine)
    flagged = [u.contribution_id for u, v in zip(ordered, verdicts, strict=True) if v == "flagged"]
    return unflatten(vector, layout), flagged


def plaintext_delta(updates: Sequence[WeightedUpdate], rule: str, byzantine: int) -> tuple[Tensors, list[str]]:
    """A plaintext round's delta under the task's rule (example-weighted FedAvg, or a robust rule) and who it flagged.

    The aggregator and the evaluation harness's in-process mode both call this, so the two compute
    the same bytes from the same updates. AggregationError when the rule cannot run on them.
    """
    if rule == "fedavg":
        return fedavg(updates), []
    return robust_delta(updates, rule, byzantine)
