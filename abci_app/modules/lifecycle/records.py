"""The lifecycle module's chain records: attestations, the last-good pointer, decisions and their history.

Light on purpose (typing only): evaluators and the light client read these shapes too.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = [
    "AttestationRecord",
    "DecisionEntry",
    "DecisionSummary",
    "HistoryEntry",
    "PointerRecord",
    "PolicyVerdict",
    "RollbackEntry",
]


class PolicyVerdict(TypedDict):
    """What a promotion policy contract answered (evm_engine.policy.summary)."""

    kind: str
    contract: str
    allow: bool
    reason: str
    gas_used: int


class DecisionSummary(TypedDict):
    """A version's decision, written into its version record and its history entry."""

    attestations: int
    weight: int
    quorum_weight: int
    evaluators: list[str]
    canary_accuracy_ppm: int
    backdoor_asr_ppm: int
    min_canary_accuracy_ppm: int
    max_backdoor_asr_ppm: int
    reasons: list[str]
    policy: NotRequired[PolicyVerdict]


class AttestationRecord(TypedDict):
    """`lc/att/<task>/<version>/<did>`: one evaluator's measurements of a version."""

    task_id: str
    version: int
    evaluator: str
    signer: str
    organization: str
    canary_accuracy_ppm: int
    backdoor_asr_ppm: int
    metrics_sha256: str
    weight: int  # the evaluator's reputation when it attested
    height: int


class PointerRecord(TypedDict):
    """`lc/task/<task>`: the last good version and how many decisions the history holds."""

    task_id: str
    last_good: int
    last_good_height: int | None
    decisions: int


class DecisionEntry(TypedDict):
    """`lc/history/<task>/<n>` of a promotion or quarantine."""

    action: Literal["promoted", "quarantined"]
    task_id: str
    version: int
    height: int
    last_good_before: int
    last_good_after: int
    decision: DecisionSummary
    seq: NotRequired[int]  # set when appended


class RollbackEntry(TypedDict):
    """`lc/history/<task>/<n>` of a governance rollback."""

    action: Literal["rolled_back"]
    task_id: str
    versions: list[int]
    height: int
    last_good_before: int
    last_good_after: int
    seq: NotRequired[int]  # set when appended


HistoryEntry = DecisionEntry | RollbackEntry
