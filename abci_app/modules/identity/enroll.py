"""Enrollment: what every admission does once its credential checked out, shared by `admit` and `admit_sd`.

The credential checks differ (a signed W3C credential, or a selectively disclosed ecdsa-sd-2023
proof); what follows them must not: revocation, one enrollment per DID and per key, the
organization's cap, the admission policy contracts, then the member record and its indexes.
"""

from __future__ import annotations

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.evm_engine.policy import consult_admission
from fedledger.abci_app.modules.identity import keys
from fedledger.abci_app.modules.identity.records import OrganizationRecord
from fedledger.abci_app.records import store_record

__all__ = ["enroll"]


def enroll(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, org: OrganizationRecord, *,
           subject: str, issuer: str, role: str, tasks: tuple[str, ...], credential_id: str, valid_from: int,
           valid_until: int) -> list[Event]:
    """What every admission does once its credential checked out: revocation, duplicates, the cap, the policy
    contracts, then the member record and its indexes (shared by `admit` and `admit_sd`)."""
    if view.get(keys.revoked_key(issuer, credential_id)) is not None:
        raise TxError(Code.CREDENTIAL_REVOKED, f"credential {credential_id} was revoked by its issuer")
    if view.get(keys.member_key(subject)) is not None:
        raise TxError(Code.ALREADY_EXISTS, f"{subject} is already enrolled")
    if view.get(keys.key_binding_key(signer)) is not None:
        raise TxError(Code.ALREADY_EXISTS, "this key already acts for an enrolled DID")
    count_raw = view.get(keys.org_count_key(org["id"]))
    count = int(count_raw) if count_raw is not None else 0
    if count >= org["enrollment_cap"]:
        raise TxError(Code.ORG_CAP, f"organization {org['id']!r} reached its enrollment cap of "
                                    f"{org['enrollment_cap']} members")
    # The admission policy contracts decide last (POLICY_DENIED on a deny, revert or out-of-gas).
    policies = consult_admission(view, ctx, subject=subject, issuer=issuer, organization=org["id"], role=role,
                                 tasks=tasks, valid_from=valid_from, valid_until=valid_until)
    if state is not None:
        store_record(state, keys.member_key(subject), {
            "did": subject, "key": signer, "organization": org["id"], "role": role, "tasks": list(tasks),
            "credential_id": credential_id, "issuer": issuer, "valid_until": valid_until,
            "enrolled_height": ctx.height, "status": "active",
        })
        state.set(keys.key_binding_key(signer), subject.encode("ascii"))
        state.set(keys.org_count_key(org["id"]), str(count + 1).encode("ascii"))
        state.set(keys.credential_index_key(issuer, credential_id), subject.encode("ascii"))
    events = [fl_event("admit", signer, did=subject, organization=org["id"], role=role)]
    if state is not None and policies is not None:
        events += policies.record(state)
    return events
