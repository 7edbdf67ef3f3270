"""Store keys of the inference module, all built here (prefixed `inf/`, numbers zero-padded so they sort)."""

from __future__ import annotations

__all__ = ["META_KEY", "PARAMS_KEY", "batch_key", "encrypted_key", "fraud_key", "node_index_key", "node_key",
           "policy_key",
           "request_key", "slash_key"]

META_KEY = b"inf/meta"
"""{nodes, batches, slashes}: how many node, batch and slash records exist (absent: none yet)."""

PARAMS_KEY = b"inf/params"
"""The chain's inference params (absent: the built-in defaults, see params.py)."""


def node_key(seq: int) -> bytes:
    """The seq-th registered inference node (1-based)."""
    return b"inf/node/%08d" % seq


def node_index_key(signer: str) -> bytes:
    """Which node record a signing key (hex) registered."""
    return b"inf/nodeof/" + signer.encode("ascii")


def policy_key(task_id: str) -> bytes:
    """A task's inference policy (absent: general tier, k = 3)."""
    return b"inf/policy/" + task_id.encode("ascii")


def batch_key(seq: int) -> bytes:
    """The seq-th reported receipts batch (1-based)."""
    return b"inf/batch/%010d" % seq


def request_key(request_hash: str) -> bytes:
    """Marks a request (hash of its sorted receipt hashes) as tallied, and in which batch: replays are refused."""
    return b"inf/req/" + request_hash.encode("ascii")


def slash_key(seq: int) -> bytes:
    """The seq-th slashing record (1-based)."""
    return b"inf/slash/%08d" % seq


def fraud_key(evidence: str) -> bytes:
    """Marks a fraud proof (hash of its two receipt hashes, sorted) as used, so it slashes once."""
    return b"inf/fraud/" + evidence.encode("ascii")


def encrypted_key(request_id: str) -> bytes:
    """A critical request answered over CKKS (its request id, 32 hex chars): the record of that guarantee."""
    return b"inf/ckks/" + request_id.encode("ascii")
