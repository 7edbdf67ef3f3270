"""Message bodies of the identity tx types and their stateless validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.fields import HEX64, HEX128, require_fields

__all__ = ["PARSERS", "Admit", "AdmitSD", "RevokeCredential", "RotateKey"]

_ORG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CRED_ID_RE = re.compile(r"^[A-Za-z0-9:._/-]{1,200}$")





@dataclass(frozen=True)
class Admit:
    """Enroll the signer with a Verifiable Credential naming the signer's did:key as its subject."""

    credential: dict[str, Any]

    @staticmethod
    def parse(body: dict[str, Any]) -> Admit:
        """Validate an admit body (the credential itself is verified statefully, against its issuer)."""
        require_fields(body, {"credential"})
        if not isinstance(body["credential"], dict):
            raise TxError(Code.INVALID_BODY, "credential must be a JSON object (a W3C Verifiable Credential)")
        return Admit(credential=body["credential"])


@dataclass(frozen=True)
class AdmitSD:
    """Enroll the signer with a selectively disclosed (ecdsa-sd-2023) organization-member credential."""

    credential: dict[str, Any]

    @staticmethod
    def parse(body: dict[str, Any]) -> AdmitSD:
        """Validate an admit_sd body (the derived proof is verified statefully, against its issuer)."""
        require_fields(body, {"credential"})
        if not isinstance(body["credential"], dict):
            raise TxError(Code.INVALID_BODY, "credential must be a JSON object (a derived ecdsa-sd-2023 credential)")
        return AdmitSD(credential=body["credential"])


@dataclass(frozen=True)
class RevokeCredential:
    """An issuer revokes a credential it issued; a member admitted with it loses its rights."""

    organization: str
    credential_id: str

    @staticmethod
    def parse(body: dict[str, Any]) -> RevokeCredential:
        """Validate a revoke_credential body."""
        require_fields(body, {"organization", "credential_id"})
        org, cred = body["organization"], body["credential_id"]
        if not isinstance(org, str) or not _ORG_RE.match(org):
            raise TxError(Code.INVALID_BODY, "organization must be an organization id")
        if not isinstance(cred, str) or not _CRED_ID_RE.match(cred):
            raise TxError(Code.INVALID_BODY, "credential_id must be a credential id (URN or URL)")
        return RevokeCredential(organization=org, credential_id=cred)


@dataclass(frozen=True)
class RotateKey:
    """A member moves its signing rights to a new key, proving possession of the new key."""

    new_key: str
    proof: str  # Ed25519 signature by the new key over rotation_message(did, old_key, new_key)

    @staticmethod
    def parse(body: dict[str, Any]) -> RotateKey:
        """Validate a rotate_key body."""
        require_fields(body, {"new_key", "proof"})
        if not isinstance(body["new_key"], str) or not HEX64.match(body["new_key"]):
            raise TxError(Code.INVALID_BODY, "new_key must be an Ed25519 public key in hex")
        if not isinstance(body["proof"], str) or not HEX128.match(body["proof"]):
            raise TxError(Code.INVALID_BODY, "proof must be an Ed25519 signature in hex")
        return RotateKey(new_key=body["new_key"], proof=body["proof"])


def rotation_message(did: str, old_key: str, new_key: str) -> bytes:
    """What the new key signs to accept a rotation (domain-separated, binds DID and both keys)."""
    return f"fedledger-rotate-key\n{did}\n{old_key}\n{new_key}".encode("ascii")


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "admit": Admit.parse,
    "admit_sd": AdmitSD.parse,
    "revoke_credential": RevokeCredential.parse,
    "rotate_key": RotateKey.parse,
}
