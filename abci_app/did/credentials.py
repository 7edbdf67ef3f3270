"""The chain's view of credentials: verify an admission VC at block time, map failures to result codes.

This adapts the identity library (did:key, eddsa-jcs-2022 VCs) to the state machine: every
failure becomes a TxError with a registered code, and DIDs are translated to and from the hex
Ed25519 keys that sign txs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.abci_app.did import didkey
from fedledger.abci_app.did import vc as vclib
from fedledger.abci_app.errors import Code, TxError

__all__ = ["DEFAULT_ORG_ROLES", "ROLES", "block_time_iso", "did_of_key", "key_of_did", "verify"]

ROLES: tuple[str, ...] = tuple(vclib.ROLES)
DEFAULT_ORG_ROLES: tuple[str, ...] = tuple(vclib.DEFAULT_ORG_ROLES)


def key_of_did(did: str) -> str:
    """The hex Ed25519 public key of a did:key; ValueError for anything else."""
    key = didkey.public_key_from_did(did)
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def did_of_key(signer: str) -> str:
    """The did:key of a hex Ed25519 public key."""
    return didkey.did_from_public_key(Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer)))


def block_time_iso(time_ns: int) -> str | None:
    """A block header time as the credential library's ISO form; None when unknown (0)."""
    return vclib.format_time(time_ns // 1_000_000_000) if time_ns > 0 else None


def verify(credential: Mapping[str, Any], now_iso: str | None) -> vclib.VerifiedCredential:
    """Verify the credential's proof and shape, and its validity window at `now_iso` (block time).

    With now_iso None (CheckTx before any block was seen) the window is not checked here;
    FinalizeBlock always checks it with the header time.
    """
    try:
        return vclib.verify_credential(credential, now_iso)
    except vclib.CredentialError as exc:
        raise TxError(_CODES.get(exc.reason, Code.CREDENTIAL_INVALID), f"credential rejected: {exc}") from exc
    except ValueError as exc:
        raise TxError(Code.CREDENTIAL_INVALID, f"credential rejected: {exc}") from exc


_CODES: dict[Any, Code] = {
    vclib.Reason.NOT_YET_VALID: Code.CREDENTIAL_EXPIRED,
    vclib.Reason.EXPIRED: Code.CREDENTIAL_EXPIRED,
    vclib.Reason.WRONG_SUBJECT: Code.UNAUTHORIZED,
}
