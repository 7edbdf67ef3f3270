"""Store keys of the identity module (organizations, members, key bindings, revocations)."""

from __future__ import annotations

__all__ = ["MEMBER_PREFIX", "credential_index_key", "key_binding_key", "member_key", "org_count_key", "org_key",
           "revoked_key"]


def org_key(org: str) -> bytes:
    """Organization record."""
    return b"id/org/" + org.encode("ascii")


def org_count_key(org: str) -> bytes:
    """Number of members an organization has enrolled (for its Sybil cap)."""
    return b"id/orgcount/" + org.encode("ascii")


MEMBER_PREFIX = b"id/member/"


def member_key(did: str) -> bytes:
    """An enrolled member, by DID."""
    return MEMBER_PREFIX + did.encode("ascii")


def key_binding_key(signer: str) -> bytes:
    """Which DID a signing key (hex) acts for."""
    return b"id/key/" + signer.encode("ascii")


def revoked_key(issuer_did: str, credential_id: str) -> bytes:
    """A credential its issuer revoked."""
    return b"id/revoked/" + issuer_did.encode("ascii") + b"/" + credential_id.encode("ascii")


def credential_index_key(issuer_did: str, credential_id: str) -> bytes:
    """Which DID was admitted with a credential (so revoking it suspends that member)."""
    return b"id/credential/" + issuer_did.encode("ascii") + b"/" + credential_id.encode("ascii")
