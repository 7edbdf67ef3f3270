"""DID and credential primitives: did:key DIDs and W3C admission credentials (eddsa-jcs-2022), pure and deterministic.

The identity module (abci_app/modules/identity/) applies them to chain state; clients use them to
create DIDs and issue credentials. This folder holds no chain state.
"""

from fedledger.abci_app.did.didkey import (
    DIDKeyError,
    did_document,
    did_from_private_key,
    did_from_public_key,
    public_key_from_did,
    resolve_verification_method,
    validate_did,
    verification_method_id,
)
from fedledger.abci_app.did.jcs import JCSError, canonicalize, loads
from fedledger.abci_app.did.vc import (
    ANY_ORGANIZATION,
    ROLES,
    CredentialError,
    Reason,
    TimeFormatError,
    VerifiedCredential,
    format_time,
    issue_admission_credential,
    parse_time,
    verify_credential,
)

__all__ = [
    "ANY_ORGANIZATION",
    "ROLES",
    "CredentialError",
    "DIDKeyError",
    "JCSError",
    "Reason",
    "TimeFormatError",
    "VerifiedCredential",
    "canonicalize",
    "did_document",
    "did_from_private_key",
    "did_from_public_key",
    "format_time",
    "issue_admission_credential",
    "loads",
    "parse_time",
    "public_key_from_did",
    "resolve_verification_method",
    "validate_did",
    "verification_method_id",
    "verify_credential",
]
