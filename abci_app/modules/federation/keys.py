"""Store keys of the federation module, built here only: prefixed and zero-padded so they sort."""

from __future__ import annotations

__all__ = [
    "availability_key",
    "contribution_key",
    "contribution_prefix",
    "norm_circuit_key",
    "round_key",
    "task_key",
    "version_key",
    "version_prefix",
]


def task_key(task_id: str) -> bytes:
    """Task record."""
    return b"fl/task/" + task_id.encode("ascii")


def round_key(task_id: str, number: int) -> bytes:
    """Round record; the round number is zero-padded so rounds sort numerically."""
    return b"fl/round/%s/%010d" % (task_id.encode("ascii"), number)


def contribution_prefix(task_id: str, number: int) -> bytes:
    """Prefix of every contribution of one round (sorted by signer)."""
    return b"fl/contrib/%s/%010d/" % (task_id.encode("ascii"), number)


def contribution_key(task_id: str, number: int, signer: str) -> bytes:
    """One participant's contribution to one round."""
    return contribution_prefix(task_id, number) + signer.encode("ascii")


def version_prefix(task_id: str) -> bytes:
    """Prefix of every model version of a task (sorted by version number)."""
    return b"fl/version/%s/" % task_id.encode("ascii")


def version_key(task_id: str, version: int) -> bytes:
    """One model version of a task."""
    return version_prefix(task_id) + b"%010d" % version


def availability_key(task_id: str, did: str) -> bytes:
    """A participant's declared availability for a task's rounds (absent: available)."""
    return b"fl/avail/%s/%s" % (task_id.encode("ascii"), did.encode("ascii"))


def norm_circuit_key(task_id: str) -> bytes:
    """The norm-bound circuit a task's commits must prove against (absent: the task requires no norm proof)."""
    return b"fl/normcircuit/" + task_id.encode("ascii")
