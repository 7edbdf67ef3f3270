"""Identity tx handlers: admission with a Verifiable Credential, revocation by the issuer, key rotation."""

from __future__ import annotations

from typing import cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.did import credentials
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.identity import keys
from fedledger.abci_app.modules.identity.admit_sd import admit_sd
from fedledger.abci_app.modules.identity.authz import require_member
from fedledger.abci_app.modules.identity.enroll import enroll
from fedledger.abci_app.modules.identity.msgs import Admit, RevokeCredential, RotateKey, rotation_message
from fedledger.abci_app.modules.identity.records import MemberRecord, OrganizationRecord
from fedledger.abci_app.records import load_record, store_record

__all__ = ["HANDLERS"]


def _org(view: Reader, org: str) -> OrganizationRecord:
    rec = cast("OrganizationRecord | None", load_record(view, keys.org_key(org)))
    if rec is None:
        raise TxError(Code.NOT_FOUND, f"organization {org!r} is not registered on this chain")
    return rec


def admit(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: Admit) -> list[Event]:
    """Verify the credential (proof, issuer of the organization, validity at block time, revocation, cap)."""
    claims = credentials.verify(msg.credential, credentials.block_time_iso(ctx.time_ns))
    subject_key = credentials.key_of_did(claims.subject)
    if subject_key != signer:
        raise TxError(Code.UNAUTHORIZED, f"the credential's subject is {claims.subject}; sign the admit tx with "
                                         "that DID's key")
    org = _org(view, claims.organization)
    if claims.issuer not in org["issuers"]:
        raise TxError(Code.CREDENTIAL_INVALID, f"{claims.issuer} is not a registered issuer of {org['id']!r}")
    if claims.role not in org["roles"]:
        raise TxError(Code.CREDENTIAL_INVALID, f"organization {org['id']!r} does not grant role {claims.role!r}")
    return enroll(view, state, ctx, signer, org, subject=claims.subject, issuer=claims.issuer, role=claims.role,
                  tasks=tuple(claims.tasks), credential_id=claims.credential_id, valid_from=claims.valid_from,
                  valid_until=claims.valid_until)


def revoke_credential(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                      msg: RevokeCredential) -> list[Event]:
    """Only an issuer of the organization (signing with its did:key) revokes; its holder is suspended."""
    org = _org(view, msg.organization)
    issuer = credentials.did_of_key(signer)
    if issuer not in org["issuers"]:
        raise TxError(Code.UNAUTHORIZED, f"{issuer} is not an issuer of {org['id']!r}")
    if view.get(keys.revoked_key(issuer, msg.credential_id)) is not None:
        raise TxError(Code.ALREADY_EXISTS, f"credential {msg.credential_id} is already revoked")
    holder = view.get(keys.credential_index_key(issuer, msg.credential_id))
    if state is not None:
        state.set(keys.revoked_key(issuer, msg.credential_id), str(ctx.height).encode("ascii"))
        if holder is not None:
            member = cast("MemberRecord | None", load_record(state, keys.member_key(holder.decode("ascii"))))
            if member is not None:
                member["status"] = "revoked"
                store_record(state, keys.member_key(member["did"]), member)
    return [fl_event("revoke_credential", signer, organization=org["id"], credential=msg.credential_id)]


def rotate_key(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: RotateKey) -> list[Event]:
    """Move a member's signing rights to a new key that proved possession by signing the rotation."""
    member = require_member(view, signer, ctx)
    if view.get(keys.key_binding_key(msg.new_key)) is not None:
        raise TxError(Code.ALREADY_EXISTS, "the new key already acts for an enrolled DID")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(msg.new_key)).verify(
            bytes.fromhex(msg.proof), rotation_message(member["did"], signer, msg.new_key))
    except (InvalidSignature, ValueError) as exc:
        raise TxError(Code.BAD_SIGNATURE, "proof is not the new key's signature over the rotation") from exc
    if state is not None:
        member["key"] = msg.new_key
        store_record(state, keys.member_key(member["did"]), member)
        state.delete(keys.key_binding_key(signer))
        state.set(keys.key_binding_key(msg.new_key), member["did"].encode("ascii"))
    return [fl_event("rotate_key", signer, did=member["did"])]


HANDLERS: dict[str, Handler] = {
    "admit": admit,
    "admit_sd": admit_sd,
    "revoke_credential": revoke_credential,
    "rotate_key": rotate_key,
}
