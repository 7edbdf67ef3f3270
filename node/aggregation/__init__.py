"""Aggregation rules that combine participants' weight deltas into one global update."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fedledger.node.aggregation import fedavg
from fedledger.node.aggregation.fedavg import (
    AggregationError,
    WeightedUpdate,
    aggregate,
    apply_delta,
    validate_updates,
)
from fedledger.sdk.tensors import Tensors

__all__ = [
    "RULES",
    "AggregationError",
    "AggregationRule",
    "WeightedUpdate",
    "aggregate",
    "apply_delta",
    "get_rule",
    "validate_updates",
]


class AggregationRule(Protocol):
    """A pure function that maps a round's weighted updates to one aggregated delta."""

    def __call__(self, updates: Sequence[WeightedUpdate]) -> Tensors:
        """Aggregate the updates; raise AggregationError if they cannot be combined."""
        ...


# Later rules (secure aggregation, robust statistics) register here under their on-chain names.
RULES: dict[str, AggregationRule] = {"fedavg": fedavg.aggregate}


def get_rule(name: str) -> AggregationRule:
    """Return the aggregation rule registered under name, or raise AggregationError listing the known ones."""
    try:
        return RULES[name]
    except KeyError:
        raise AggregationError(f"unknown aggregation rule {name!r}; known rules: {sorted(RULES)}") from None
