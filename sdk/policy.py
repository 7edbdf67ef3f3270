"""A task's SecAgg+ settings as off-chain services need them: present, or a clear error.

The policy itself, with the chain's default for older tasks, is the federation module's
`aggregation_of`; services that run a SecAgg+ stage ask here and get NotSecureError, not a
KeyError or a None, when the task has no secure aggregation.
"""

from __future__ import annotations

from fedledger.abci_app.errors import ProtocolError
from fedledger.abci_app.modules.federation.aggregation import aggregation_of
from fedledger.abci_app.modules.federation.records import SecurePolicy, TaskRecord

__all__ = ["NotSecureError", "secure_of"]


class NotSecureError(ProtocolError):
    """A SecAgg+ step was asked of a task whose policy has no secure aggregation."""

    error_code = "NOT_SECURE"


def secure_of(task: TaskRecord) -> SecurePolicy:
    """The task's SecAgg+ settings; NotSecureError if the task does not aggregate securely."""
    secure = aggregation_of(task)["secure"]
    if secure is None:
        raise NotSecureError(f"task {task['task_id']!r} does not run secure aggregation")
    return secure
