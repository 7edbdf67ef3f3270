"""Store keys of the secagg module: one record per (kind, task, round, signer), sorted by signer."""

from __future__ import annotations

__all__ = ["KINDS", "post_key", "post_prefix", "public_key_key"]

# keys: a participant's two X25519 public keys; shares: the encrypted Shamir shares it sent to its
# neighbours (an IPFS payload); unmask: the shares it reveals once the survivor set is fixed.
KINDS = ("keys", "shares", "unmask")


def post_prefix(kind: str, task_id: str, number: int) -> bytes:
    """Prefix of every post of one kind in one round."""
    return b"sa/%s/%s/%010d/" % (kind.encode("ascii"), task_id.encode("ascii"), number)


def post_key(kind: str, task_id: str, number: int, signer: str) -> bytes:
    """One participant's post of one kind in one round."""
    return post_prefix(kind, task_id, number) + signer.encode("ascii")


def public_key_key(task_id: str, number: int, public_hex: str) -> bytes:
    """Marks a public key as advertised in a round, so a copied key is refused in O(1)."""
    return b"sa/pk/%s/%010d/%s" % (task_id.encode("ascii"), number, public_hex.encode("ascii"))
