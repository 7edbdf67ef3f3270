"""Store keys of the zk module, built in one place: prefixed, zero-padded so that they sort."""

from __future__ import annotations

__all__ = ["META_KEY", "PARAMS_KEY", "circuit_key", "digest_key", "proof_key"]

PARAMS_KEY = b"zk/params"
META_KEY = b"zk/meta"


def circuit_key(task_id: str, version: int, input_mode: str) -> bytes:
    """The circuit (settings + vk) registered for one version of a task and one input mode."""
    return b"zk/circuit/%s/%020d/%s" % (task_id.encode(), version, input_mode.encode())


def proof_key(task_id: str, request_id: str) -> bytes:
    """The verdict on the proof submitted for one request of a task (one per request: replays are refused)."""
    return b"zk/proof/%s/%s" % (task_id.encode(), request_id.encode())


def digest_key(proof_sha256: str) -> bytes:
    """Index from a proof's digest to its request, so the same proof cannot be filed under a second request id."""
    return b"zk/digest/" + proof_sha256.encode()
