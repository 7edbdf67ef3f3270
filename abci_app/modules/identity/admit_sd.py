"""admit_sd: enroll a member with a selectively disclosed (ecdsa-sd-2023) organization-member credential.

The chain sees only what the holder disclosed. It checks, in order: the derived proof (forged or
tampered: SD_PROOF_INVALID; unbundled context: SD_CONTEXT_UNKNOWN), the issuer is a registered
issuer of the disclosed organization (CREDENTIAL_INVALID), the window against block time
(CREDENTIAL_EXPIRED), the signer is the subject (UNAUTHORIZED), the organization's disclosure
policy (SD_CLAIMS_DENIED, naming the missing or refused claim), revocation, and the caps - the
same bookkeeping as admit.
"""

from __future__ import annotations

from typing import cast

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.did import credentials
from fedledger.abci_app.did.ecdsa_sd.claims import OrgClaims, org_claims
from fedledger.abci_app.did.ecdsa_sd.contexts import UnknownContextError
from fedledger.abci_app.did.ecdsa_sd.verify import SDProofError, verify_derived
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.identity import keys
from fedledger.abci_app.modules.identity.enroll import enroll
from fedledger.abci_app.modules.identity.msgs import AdmitSD
from fedledger.abci_app.modules.identity.records import OrganizationRecord
from fedledger.abci_app.records import load_record

__all__ = ["admit_sd", "check_disclosure_policy", "verified_claims"]


def verified_claims(credential: dict[str, object]) -> OrgClaims:
    """Verify the derived proof and read its signed claims; every failure is a TxError with its code."""
    try:
        return org_claims(verify_derived(credential))
    except UnknownContextError as exc:
        raise TxError(Code.SD_CONTEXT_UNKNOWN, f"credential rejected: {exc}") from exc
    except SDProofError as exc:
        raise TxError(Code.SD_PROOF_INVALID, f"credential rejected: {exc}") from exc
    except ValueError as exc:  # pyld's JSON-LD errors on a malformed document, MultikeyError, ...
        raise TxError(Code.SD_PROOF_INVALID, f"credential rejected: {type(exc).__name__}: {exc}") from exc


def check_disclosure_policy(org: OrganizationRecord, claims: OrgClaims) -> None:
    """Every claim the organization's policy names must be disclosed, with an allowed value."""
    # Without a policy of its own an organization needs only the role disclosed.
    default: dict[str, list[str]] = {"role": []}
    policy = org.get("disclosure_policy", default)
    for claim in sorted(policy):
        allowed = policy[claim]
        if claim not in claims.claims:
            raise TxError(Code.SD_CLAIMS_DENIED, f"organization {org['id']!r} requires the claim {claim!r}; the "
                                                 f"credential discloses only {sorted(claims.claims)}")
        if allowed and claims.claims[claim] not in allowed:
            raise TxError(Code.SD_CLAIMS_DENIED, f"organization {org['id']!r} accepts {claim} in {allowed}, "
                                                 f"not {claims.claims[claim]!r}")


def admit_sd(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: AdmitSD) -> list[Event]:
    """Admit the signer on a derived ecdsa-sd-2023 credential of its organization."""
    claims = verified_claims(msg.credential)
    org_id, role = claims.claims.get("organization"), claims.claims.get("role")
    if org_id is None or role is None:
        raise TxError(Code.SD_CLAIMS_DENIED, "an organization credential must disclose organization and role")
    org = cast("OrganizationRecord | None", load_record(view, keys.org_key(org_id)))
    if org is None:
        raise TxError(Code.NOT_FOUND, f"organization {org_id!r} is not registered on this chain")
    if claims.issuer not in org["issuers"]:
        raise TxError(Code.CREDENTIAL_INVALID, f"{claims.issuer} is not a registered issuer of {org['id']!r}")
    now = ctx.time_ns // 1_000_000_000
    if ctx.time_ns > 0 and not claims.valid_from <= now < claims.valid_until:
        raise TxError(Code.CREDENTIAL_EXPIRED, f"credential valid [{claims.valid_from}, {claims.valid_until}) "
                                               f"but block time is {now}")
    try:
        subject_key = credentials.key_of_did(claims.subject)
    except ValueError as exc:
        raise TxError(Code.SD_PROOF_INVALID,
                      f"credential subject {claims.subject!r} is not an Ed25519 did:key") from exc
    if subject_key != signer:
        raise TxError(Code.UNAUTHORIZED, f"the credential's subject is {claims.subject}; sign admit_sd with that "
                                         "DID's key")
    check_disclosure_policy(org, claims)
    if role not in org["roles"]:
        raise TxError(Code.SD_CLAIMS_DENIED, f"organization {org['id']!r} does not grant role {role!r}")
    tasks = (claims.claims["task"],) if "task" in claims.claims else ()
    return enroll(view, state, ctx, signer, org, subject=claims.subject, issuer=claims.issuer, role=role, tasks=tasks,
                  credential_id=claims.credential_id, valid_from=claims.valid_from, valid_until=claims.valid_until)
