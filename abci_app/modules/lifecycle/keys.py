"""Store keys of the lifecycle module (params, attestations, last-good pointer, decision history)."""

from __future__ import annotations

__all__ = [
    "DEFAULTS_KEY",
    "attestation_key",
    "attestation_prefix",
    "history_key",
    "history_prefix",
    "params_key",
    "pointer_key",
]

DEFAULTS_KEY = b"lc/defaults"
"""The chain-wide default lifecycle params, written at genesis."""


def params_key(task_id: str) -> bytes:
    """A task's own lifecycle params (set by governance); absent means the chain defaults apply."""
    return b"lc/params/" + task_id.encode("ascii")


def pointer_key(task_id: str) -> bytes:
    """A task's last-good pointer and decision counter; absent means version 0 and no decision yet."""
    return b"lc/task/" + task_id.encode("ascii")


def attestation_prefix(task_id: str, version: int) -> bytes:
    """Prefix of every attestation of one version (sorted by evaluator DID)."""
    return b"lc/att/%s/%010d/" % (task_id.encode("ascii"), version)


def attestation_key(task_id: str, version: int, did: str) -> bytes:
    """One evaluator's attestation of one version; keyed by DID so a rotated key cannot attest twice."""
    return attestation_prefix(task_id, version) + did.encode("ascii")


def history_prefix(task_id: str) -> bytes:
    """Prefix of a task's lifecycle decisions (promote, quarantine, rollback), in the order they happened."""
    return b"lc/history/%s/" % task_id.encode("ascii")


def history_key(task_id: str, seq: int) -> bytes:
    """The seq-th lifecycle decision of a task (1-based, zero-padded so entries sort in order)."""
    return history_prefix(task_id) + b"%010d" % seq
