"""FedLedger admission credentials: VC Data Model 2.0 documents secured with eddsa-jcs-2022 Data Integrity proofs."""

from __future__ import annotations

import calendar
import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.did.didkey import (
    ASSERTION_METHOD,
    DIDKeyError,
    b58decode,
    b58encode,
    did_from_private_key,
    resolve_verification_method,
    validate_did,
    verification_method_id,
)
from fedledger.abci_app.did.jcs import JCSError, canonicalize
from fedledger.abci_app.errors import ConfigError, VerificationError

__all__ = [
    "ADMISSION_CREDENTIAL_TYPE",
    "ANY_ORGANIZATION",
    "CRYPTOSUITE",
    "PROOF_TYPE",
    "DEFAULT_ORG_ROLES",
    "ROLES",
    "STATUS_ENTRY_TYPE",
    "VC_CONTEXT_V2",
    "CredentialError",
    "Reason",
    "TimeFormatError",
    "VerifiedCredential",
    "VerifiedProof",
    "add_proof",
    "format_time",
    "hash_data",
    "issue_admission_credential",
    "parse_time",
    "proof_configuration",
    "verify_credential",
    "verify_proof",
]

VC_CONTEXT_V2 = "https://www.w3.org/ns/credentials/v2"
ADMISSION_CREDENTIAL_TYPE = "FedLedgerAdmissionCredential"
PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
STATUS_ENTRY_TYPE = "FedLedgerRevocationEntry"
# trusted_issuers value meaning "this issuer may admit members of any organization".
ANY_ORGANIZATION = "*"

ROLES: tuple[str, ...] = ("issuer", "trainer", "aggregator", "evaluator", "validator-admin", "auditor", "inference")
# What an organization may grant when its genesis entry lists no roles: every role but `inference`,
# which came later; an organization that runs inference nodes lists it (so older genesis files
# keep exactly the state they always had).
DEFAULT_ORG_ROLES: tuple[str, ...] = ROLES[:-1]

_SIGNATURE_BYTES = 64
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", re.ASCII)


class Reason(StrEnum):
    """Why a credential was refused; the chain maps each to one of its result codes."""

    MALFORMED = "MALFORMED"  # not JSON we accept, or not a well-formed FedLedger admission credential
    BAD_PROOF = "BAD_PROOF"  # proof missing, unsupported, unresolvable key, issuer/key mismatch or bad signature
    UNKNOWN_ISSUER = "UNKNOWN_ISSUER"  # the issuer is not in the trusted set
    WRONG_ORGANIZATION = "WRONG_ORGANIZATION"  # a trusted issuer vouching outside its organization
    NOT_YET_VALID = "NOT_YET_VALID"  # now < validFrom
    EXPIRED = "EXPIRED"  # now >= validUntil
    WRONG_ROLE = "WRONG_ROLE"  # an unknown role, or one the caller does not accept
    WRONG_SUBJECT = "WRONG_SUBJECT"  # the subject is not the DID the caller expected


class CredentialError(VerificationError, ValueError):
    """A credential that cannot be issued or is refused; `reason` is machine-readable, `message` is for people."""

    error_code = "CREDENTIAL_INVALID"

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class TimeFormatError(ConfigError):
    """A time that is not an ISO 8601 / RFC 3339 timestamp with a zone."""

    error_code = "TIME_FORMAT"


def parse_time(text: Any) -> int:
    """Seconds since the Unix epoch of 'YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)'; fractions are truncated.

    Pure integer arithmetic: no floats, no local time zone, no clock.
    """
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise TimeFormatError(f"{text!r} is not an ISO 8601 UTC time like 2025-01-31T12:00:00Z")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        datetime(year, month, day, hour, minute, second)  # calendar validation only (Feb 30, hour 24 ...)
    except ValueError as exc:
        raise TimeFormatError(f"{text!r} is not a valid time: {exc}") from exc
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = match.group(8)
    if zone != "Z":
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise TimeFormatError(f"{text!r} has an invalid UTC offset")
        offset = hours * 3600 + minutes * 60
        seconds -= offset if zone[0] == "+" else -offset
    return seconds


def format_time(seconds: int) -> str:
    """The canonical 'YYYY-MM-DDTHH:MM:SSZ' form of Unix seconds (e.g. a block time in ns // 10**9)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TimeFormatError(f"{seconds!r} is not a whole number of seconds")
    days, rest = divmod(seconds, 86400)
    try:
        date = datetime.fromordinal(datetime(1970, 1, 1).toordinal() + days)
    except (ValueError, OverflowError) as exc:
        raise TimeFormatError(f"{seconds} seconds is outside years 1-9999") from exc
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{date.year:04d}-{date.month:02d}-{date.day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


# ----------------------------------------------------------------------------- eddsa-jcs-2022
def _canonical(value: Any, what: str) -> bytes:
    try:
        return canonicalize(value)
    except JCSError as exc:
        raise CredentialError(Reason.MALFORMED, f"{what} cannot be canonicalized: {exc}") from exc


def proof_configuration(options: Mapping[str, Any], unsecured_document: Mapping[str, Any]) -> bytes:
    """The canonical proof configuration of eddsa-jcs-2022 (Data Integrity EdDSA Cryptosuites v1.0, 3.3.5).

    A copy of the proof options whose @context is set to the unsecured document's @context,
    canonicalized with JCS. Refuses any other proof type or cryptosuite and an invalid `created`.
    """
    if options.get("type") != PROOF_TYPE or options.get("cryptosuite") != CRYPTOSUITE:
        raise CredentialError(Reason.BAD_PROOF, f"proof is not a {PROOF_TYPE} with cryptosuite {CRYPTOSUITE} "
                                                f"(got {options.get('type')!r}, {options.get('cryptosuite')!r})")
    if "created" in options:
        try:
            parse_time(options["created"])
        except TimeFormatError as exc:
            raise CredentialError(Reason.MALFORMED, f"proof.created: {exc}") from exc
    config = {key: value for key, value in options.items() if key != "@context"}
    if "@context" in unsecured_document:
        config["@context"] = unsecured_document["@context"]
    return _canonical(config, "proof configuration")


def hash_data(transformed_document: bytes, canonical_proof_config: bytes) -> bytes:
    """eddsa-jcs-2022 hashing (3.3.4): SHA-256(proof configuration) || SHA-256(canonical document), 64 bytes."""
    return hashlib.sha256(canonical_proof_config).digest() + hashlib.sha256(transformed_document).digest()


def add_proof(document: Mapping[str, Any], private_key: Ed25519PrivateKey, verification_method: str,
              created: str | None = None, proof_purpose: str = ASSERTION_METHOD) -> dict[str, Any]:
    """A copy of document secured with an eddsa-jcs-2022 DataIntegrityProof (3.3.1 Create Proof).

    The proof options are {type, cryptosuite, created (if given), verificationMethod, proofPurpose,
    @context (copied from the document)}; proofValue is the multibase base58btc Ed25519 signature
    over hash_data(JCS(document), proof configuration). Deterministic: Ed25519 signing is.
    """
    if "proof" in document:
        raise CredentialError(Reason.MALFORMED, "document already carries a proof; proof sets are not supported")
    unsecured = dict(document)
    options: dict[str, Any] = {"type": PROOF_TYPE, "cryptosuite": CRYPTOSUITE}
    if created is not None:
        options["created"] = created
    options["verificationMethod"] = verification_method
    options["proofPurpose"] = proof_purpose
    if "@context" in unsecured:
        options["@context"] = unsecured["@context"]
    config = proof_configuration(options, unsecured)
    signature = private_key.sign(hash_data(_canonical(unsecured, "document"), config))
    return {**unsecured, "proof": {**options, "proofValue": "z" + b58encode(signature)}}


@dataclass(frozen=True)
class VerifiedProof:
    """A proof that verified: who signed (the verification method and its controller DID) and when it says."""

    verification_method: str
    controller: str
    created: int | None


def verify_proof(secured_document: Mapping[str, Any], proof_purpose: str = ASSERTION_METHOD) -> VerifiedProof:
    """Verify a single eddsa-jcs-2022 proof (3.3.2 Verify Proof); CredentialError(BAD_PROOF|MALFORMED) if not.

    The verification method must be a did:key URL (did:key:z6Mk…#z6Mk…) authorized for
    proof_purpose; its public key comes from the DID itself, so verification is pure.
    """
    proof = secured_document.get("proof")
    if isinstance(proof, list):
        raise CredentialError(Reason.MALFORMED, "proof sets (a list of proofs) are not supported")
    if not isinstance(proof, Mapping):
        raise CredentialError(Reason.BAD_PROOF, "document has no proof object")
    proof_value = proof.get("proofValue")
    if not isinstance(proof_value, str) or not proof_value.startswith("z") or len(proof_value) > 100:
        raise CredentialError(Reason.BAD_PROOF, "proof.proofValue is not a multibase base58btc string")
    try:
        signature = b58decode(proof_value[1:])
    except DIDKeyError as exc:
        raise CredentialError(Reason.BAD_PROOF, f"proof.proofValue: {exc}") from exc
    if len(signature) != _SIGNATURE_BYTES:
        raise CredentialError(Reason.BAD_PROOF, f"proof.proofValue decodes to {len(signature)} bytes, not 64")
    if proof.get("proofPurpose") != proof_purpose:
        raise CredentialError(Reason.BAD_PROOF, f"proof.proofPurpose is {proof.get('proofPurpose')!r}, "
                                                f"expected {proof_purpose!r}")
    unsecured = {key: value for key, value in secured_document.items() if key != "proof"}
    options = {key: value for key, value in proof.items() if key != "proofValue"}
    if "@context" in options:
        # The document's @context must begin with the proof's, which then stands for it (3.3.2 step 4).
        proof_context, doc_context = options["@context"], unsecured.get("@context")
        if not isinstance(proof_context, list) or not isinstance(doc_context, list) \
                or doc_context[:len(proof_context)] != proof_context:
            raise CredentialError(Reason.BAD_PROOF, "the document's @context does not start with the proof's @context")
        unsecured["@context"] = proof_context
    config = proof_configuration(options, unsecured)
    transformed = _canonical(unsecured, "document")
    try:
        controller, public_key = resolve_verification_method(options.get("verificationMethod"), proof_purpose)
    except DIDKeyError as exc:
        raise CredentialError(Reason.BAD_PROOF, f"proof.verificationMethod does not resolve: {exc}") from exc
    try:
        public_key.verify(signature, hash_data(transformed, config))
    except InvalidSignature:
        raise CredentialError(Reason.BAD_PROOF, "the proof's signature does not verify (the document or "
                                                "proof was changed, or another key signed it)") from None
    created = parse_time(options["created"]) if "created" in options else None
    return VerifiedProof(str(options["verificationMethod"]), controller, created)


# ----------------------------------------------------------------------------- admission credentials
@dataclass(frozen=True)
class VerifiedCredential:
    """The typed claims of an admission credential that verified. Times are Unix seconds."""

    credential_id: str
    issuer: str
    subject: str
    organization: str
    role: str
    tasks: tuple[str, ...]
    valid_from: int
    valid_until: int
    status_id: str | None
    verification_method: str

    def claims(self) -> dict[str, Any]:
        """The claims as a JSON-ready dict (times in ISO 8601), for printing."""
        return {
            "id": self.credential_id, "issuer": self.issuer, "subject": self.subject,
            "organization": self.organization, "role": self.role, "tasks": list(self.tasks),
            "validFrom": format_time(self.valid_from), "validUntil": format_time(self.valid_until),
            "status": self.status_id, "verificationMethod": self.verification_method,
        }


def _malformed(message: str) -> CredentialError:
    return CredentialError(Reason.MALFORMED, message)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or value != value.strip():
        raise _malformed(f"{what} must be a non-empty string without surrounding spaces")
    return value


def _did(value: Any, what: str) -> str:
    try:
        return validate_did(value)
    except DIDKeyError as exc:
        raise _malformed(f"{what}: {exc}") from exc


def _uri(value: Any, what: str) -> str:
    text = _text(value, what)
    if ":" not in text or any(char.isspace() for char in text):
        raise _malformed(f"{what} must be a URI such as urn:uuid:…, got {text!r}")
    return text


def _tasks(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _malformed(f"{what} must be a list of task ids")
    tasks = tuple(_text(task, f"{what}[{index}]") for index, task in enumerate(value))
    if len(set(tasks)) != len(tasks):
        raise _malformed(f"{what} lists a task twice")
    return tasks


def _time(value: Any, what: str) -> int:
    try:
        return parse_time(value)
    except TimeFormatError as exc:
        raise _malformed(f"{what}: {exc}") from exc


def _role(value: Any, accepted: Collection[str] | None) -> str:
    if not isinstance(value, str) or value not in ROLES:
        raise CredentialError(Reason.WRONG_ROLE, f"role {value!r} is not one of {', '.join(ROLES)}")
    if accepted is not None and value not in accepted:
        raise CredentialError(Reason.WRONG_ROLE, f"role {value!r} is not accepted here "
                                                 f"(accepted: {', '.join(sorted(accepted))})")
    return value


def issue_admission_credential(issuer_key: Ed25519PrivateKey, issuer_did: str, subject_did: str, organization: str,
                               role: str, tasks: list[str], valid_from: str, valid_until: str, credential_id: str,
                               *, credential_status: str | None = None) -> dict[str, Any]:
    """A signed FedLedgerAdmissionCredential (VC DM 2.0 + eddsa-jcs-2022 proof).

    issuer_did must be the did:key of issuer_key. Times are normalized to 'YYYY-MM-DDTHH:MM:SSZ'
    and the proof's `created` is validFrom, so the same inputs always give the same bytes.
    credential_status, if given, is the id of the credential's entry in the chain's revocation
    list (credentialStatus {id, type: FedLedgerRevocationEntry, statusPurpose: revocation}).
    Raises CredentialError(MALFORMED or WRONG_ROLE) for bad input.
    """
    if did_from_private_key(issuer_key) != issuer_did:
        raise _malformed(f"issuer {issuer_did!r} is not the did:key of the signing key")
    start, end = _time(valid_from, "valid_from"), _time(valid_until, "valid_until")
    if start >= end:
        raise _malformed("valid_until must be later than valid_from")
    subject: dict[str, Any] = {
        "id": _did(subject_did, "subject"),
        "organization": _text(organization, "organization"),
        "role": _role(role, None),
        "tasks": list(_tasks(tasks, "tasks")),
    }
    document: dict[str, Any] = {
        "@context": [VC_CONTEXT_V2],
        "id": _uri(credential_id, "credential id"),
        "type": ["VerifiableCredential", ADMISSION_CREDENTIAL_TYPE],
        "issuer": issuer_did,
        "validFrom": format_time(start),
        "validUntil": format_time(end),
        "credentialSubject": subject,
    }
    if credential_status is not None:
        document["credentialStatus"] = {"id": _uri(credential_status, "credential status id"),
                                        "type": STATUS_ENTRY_TYPE, "statusPurpose": "revocation"}
    return add_proof(document, issuer_key, verification_method_id(issuer_did), created=document["validFrom"])


def _issuer_id(value: Any) -> str:
    # VC DM 2.0 allows the issuer as a URL or as an object with an id.
    if isinstance(value, Mapping):
        value = value.get("id")
    return _did(value, "issuer")


def verify_credential(vc: Mapping[str, Any], now_iso: str | None, trusted_issuers: Mapping[str, str] | None = None, *,
                      roles: Collection[str] | None = None, subject: str | None = None) -> VerifiedCredential:
    """Verify a FedLedgerAdmissionCredential at time now_iso and return its claims.

    now_iso is supplied by the caller (the chain: its block time via format_time; the CLI: now),
    never read from a clock; None skips the validity-window checks (NOT_YET_VALID, EXPIRED) for a
    caller that has no agreed time yet and checks them later. trusted_issuers maps an issuer DID
    to the organization it may admit members of (ANY_ORGANIZATION, '*', for any); None accepts
    any issuer whose proof verifies.
    roles, if given, is the set of roles the caller accepts; subject, the DID the credential must
    be about. Checks run in this order and the first failure raises CredentialError with its
    Reason: MALFORMED (shape), BAD_PROOF (signature, key resolution, issuer = key controller),
    UNKNOWN_ISSUER, WRONG_ORGANIZATION, NOT_YET_VALID (now < validFrom), EXPIRED (now >=
    validUntil), WRONG_ROLE, WRONG_SUBJECT. Revocation (credentialStatus) is the chain's check.
    A bad now_iso raises TimeFormatError: that is the caller's error, not the credential's.
    """
    now = None if now_iso is None else parse_time(now_iso)
    if not isinstance(vc, Mapping):
        raise _malformed("a credential must be a JSON object")
    _canonical(vc, "credential")
    if vc.get("@context") != [VC_CONTEXT_V2]:
        raise _malformed(f"@context must be [{VC_CONTEXT_V2!r}]")
    types = vc.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types or ADMISSION_CREDENTIAL_TYPE not in types:
        raise _malformed(f"type must list VerifiableCredential and {ADMISSION_CREDENTIAL_TYPE}")
    credential_id = _uri(vc.get("id"), "id")
    issuer = _issuer_id(vc.get("issuer"))
    valid_from, valid_until = _time(vc.get("validFrom"), "validFrom"), _time(vc.get("validUntil"), "validUntil")
    if valid_from >= valid_until:
        raise _malformed("validUntil must be later than validFrom")
    claims = vc.get("credentialSubject")
    if not isinstance(claims, Mapping):
        raise _malformed("credentialSubject must be an object")
    subject_id = _did(claims.get("id"), "credentialSubject.id")
    organization = _text(claims.get("organization"), "credentialSubject.organization")
    role_claim = claims.get("role")
    if not isinstance(role_claim, str):
        raise _malformed("credentialSubject.role must be a string")
    tasks = _tasks(claims.get("tasks"), "credentialSubject.tasks")
    status_id: str | None = None
    if "credentialStatus" in vc:
        status = vc["credentialStatus"]
        if not isinstance(status, Mapping):
            raise _malformed("credentialStatus must be an object")
        status_id = _uri(status.get("id"), "credentialStatus.id")
        _text(status.get("type"), "credentialStatus.type")
    if "proof" not in vc:
        raise CredentialError(Reason.BAD_PROOF, "credential has no proof")

    proof = verify_proof(vc)
    if proof.controller != issuer:
        raise CredentialError(Reason.BAD_PROOF, f"the proof is by {proof.controller}, not by the issuer {issuer}")

    if trusted_issuers is not None:
        if issuer not in trusted_issuers:
            raise CredentialError(Reason.UNKNOWN_ISSUER, f"issuer {issuer} is not a trusted issuer")
        allowed = trusted_issuers[issuer]
        if allowed != ANY_ORGANIZATION and allowed != organization:
            raise CredentialError(Reason.WRONG_ORGANIZATION, f"issuer {issuer} admits members of {allowed!r}, "
                                                             f"not of {organization!r}")
    if now is not None and now < valid_from:
        raise CredentialError(Reason.NOT_YET_VALID, f"credential is valid from {format_time(valid_from)}, "
                                                    f"it is {format_time(now)}")
    if now is not None and now >= valid_until:
        raise CredentialError(Reason.EXPIRED, f"credential expired at {format_time(valid_until)}, "
                                              f"it is {format_time(now)}")
    role = _role(role_claim, roles)
    if subject is not None and subject != subject_id:
        raise CredentialError(Reason.WRONG_SUBJECT, f"credential is about {subject_id}, not {subject}")
    return VerifiedCredential(credential_id, issuer, subject_id, organization, role, tasks, valid_from, valid_until,
                              status_id, proof.verification_method)
