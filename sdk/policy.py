"""A task's aggregation policy as off-chain services read it: the chain's default filled in, SecAgg required where used.

Tasks created before aggregation policies existed carry none: they aggregate with plain FedAvg,
the chain's DEFAULT_POLICY. Services that run a SecAgg+ stage ask for the secure policy and get a
clear error, not a KeyError, when the task has none.
"""

from __future__ import annotations

from fedledger.abci_app.errors import ProtocolError
from fedledger.abci_app.modules.federation.aggregation import DEFAULT_POLICY
from fedledger.abci_app.modules.federation.records import AggregationPolicy, SecurePolicy, TaskRecord

__all__ = ["NotSecureError", "aggregation_of", "secure_of"]


class NotSecureError(ProtocolError):
    """A SecAgg+ step was asked of a task whose policy has no secure aggregation."""

    error_code = "NOT_SECURE"


def aggregation_of(task: TaskRecord) -> AggregationPolicy:
    """The task's aggregation policy, or the chain's default (plain FedAvg) for tasks that carry none."""
    return task.get("aggregation") or DEFAULT_POLICY


def secure_of(task: TaskRecord) -> SecurePolicy:
    """The task's SecAgg+ settings; NotSecureError if the task does not aggregate securely."""
    secure = aggregation_of(task)["secure"]
    if secure is None:
        raise NotSecureError(f"task {task['task_id']!r} does not run secure aggregation")
    return secure
