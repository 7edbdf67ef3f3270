"""Store keys of the privacy module."""

from __future__ import annotations

__all__ = ["org_spend_key", "policy_key", "spend_key"]


def policy_key(task_id: str) -> bytes:
    """A task's privacy policy."""
    return b"dp/policy/" + task_id.encode("ascii")


def spend_key(task_id: str, did: str) -> bytes:
    """A participant's composed RDP curve and spent ε on a task."""
    return b"dp/spend/" + task_id.encode("ascii") + b"/" + did.encode("ascii")


def org_spend_key(task_id: str, org: str) -> bytes:
    """An organization's composed RDP curve and spent ε on a task (for the optional organization cap)."""
    return b"dp/orgspend/" + task_id.encode("ascii") + b"/" + org.encode("ascii")
