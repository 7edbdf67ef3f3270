"""The privacy module's chain records: a task's (ε, δ) policy and the composed spend per participant and organization.

Light on purpose (typing only): clients plan their budgets from these shapes too.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["OrgSpendRecord", "PrivacyPolicy", "SpendRecord"]


class PrivacyPolicy(TypedDict):
    """`dp/policy/<task>`: ε in micro-units (rounded up), δ as a decimal string."""

    epsilon_micro: int
    delta: str
    org_epsilon_micro: int | None


class SpendRecord(TypedDict):
    """`dp/spend/<task>/<did>`: a participant's composed RDP curve and the ε it gives."""

    task_id: str
    did: str
    rdp: list[str]  # one decimal string per RDP order, rounded up to 12 places
    spent_micro: int
    contributions: int
    # The last declared mechanism, for audit (its JSON form plus clip_norm; free-form by design).
    last_mechanism: dict[str, Any]


class OrgSpendRecord(TypedDict):
    """`dp/orgspend/<task>/<org>`: an organization's composed RDP curve on a task."""

    task_id: str
    organization: str
    rdp: list[str]
    spent_micro: int
