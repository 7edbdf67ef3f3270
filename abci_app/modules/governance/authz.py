"""Who governs: the administrators of each organization, one vote per organization."""

from __future__ import annotations

from dataclasses import dataclass

from fedledger.abci_app.context import BlockContext, Reader
from fedledger.abci_app.did.credentials import did_of_key
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.identity.keeper import find_org, member_exists, member_for_key, organizations

__all__ = ["Governor", "admin_organizations", "require_governor"]


@dataclass(frozen=True)
class Governor:
    """An administrator acting for one organization: its DID and the organization it votes for."""

    did: str
    organization: str


def admin_organizations(view: Reader, signer: str, ctx: BlockContext) -> tuple[str, list[str]]:
    """(the signer's DID, sorted organizations the signer administers).

    Two ways in: an active enrolled member whose DID is in its own organization's `admins`, or
    (bootstrapping, before anyone is enrolled) a key whose did:key is in an organization's
    `admins` while that DID holds no member record at all. The second path is closed to a DID
    that was enrolled, so a revoked member, or the old key of a member that rotated its key,
    cannot govern through it.
    """
    member = member_for_key(view, signer, ctx)
    if member is not None:
        org = find_org(view, member["organization"])
        if org is not None and member["did"] in org["admins"]:
            return member["did"], [org["id"]]
        return member["did"], []
    did = did_of_key(signer)
    if member_exists(view, did):
        return did, []
    return did, sorted(org["id"] for org in organizations(view) if did in org["admins"])


def require_governor(view: Reader, signer: str, ctx: BlockContext, organization: str | None, action: str
                     ) -> Governor:
    """The organization the signer acts for; UNAUTHORIZED unless it is one of its administrators.

    `organization` picks one when the signer administers several; it may be omitted otherwise.
    """
    did, orgs = admin_organizations(view, signer, ctx)
    if not orgs:
        raise TxError(Code.UNAUTHORIZED, f"{did} is not an administrator of any organization, so it may not "
                                         f"{action}")
    if organization is not None:
        if organization not in orgs:
            raise TxError(Code.UNAUTHORIZED, f"{did} is not an administrator of organization {organization!r} "
                                             f"(it administers {orgs})")
        return Governor(did, organization)
    if len(orgs) > 1:
        raise TxError(Code.INVALID_BODY, f"{did} administers several organizations {orgs}; name the one it "
                                         "acts for in the body's 'organization' field")
    return Governor(did, orgs[0])
