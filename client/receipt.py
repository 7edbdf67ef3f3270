"""A participant's receipt for one committed contribution, shared by the plain and the SecAgg+ client loops."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ContributionReceipt"]


@dataclass(frozen=True)
class ContributionReceipt:
    """What a participant committed: where and at which height."""

    task_id: str
    round: int
    cid: str
    sha256: str
    size: int
    height: int
    latency_s: float  # broadcast to committed block
    epsilon: float  # the participant's ε on this task after this contribution (display only)
