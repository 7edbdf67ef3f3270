"""The identity keeper: the only way other modules read or change members and organizations.

Reads keep the exact store access pattern the callers had (a listing, then a get per key), so
query proofs and app hashes do not move.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.modules.identity import keys
from fedledger.abci_app.modules.identity.authz import member_for_key, require_member
from fedledger.abci_app.modules.identity.genesis import organization_record
from fedledger.abci_app.modules.identity.records import MemberRecord, OrganizationRecord
from fedledger.abci_app.records import decode_record, load_record, store_record

__all__ = [
    "delete_org",
    "find_member",
    "find_org",
    "member_exists",
    "member_for_key",
    "members",
    "org_exists",
    "org_ids",
    "organization_record",
    "organizations",
    "require_member",
    "store_member",
    "store_org",
]

_ORG_PREFIX = keys.org_key("")


def find_member(view: Reader, did: str) -> MemberRecord | None:
    """The member record of `did` (whatever its status), or None."""
    return cast("MemberRecord | None", load_record(view, keys.member_key(did)))


def member_exists(view: Reader, did: str) -> bool:
    """True if `did` was ever enrolled (its record exists, whatever its status)."""
    return view.get(keys.member_key(did)) is not None


def store_member(state: Writer, member: MemberRecord) -> None:
    """Write a member record back (e.g. governance suspending the members of a removed organization)."""
    store_record(state, keys.member_key(member["did"]), member)


def members(view: Reader) -> Iterator[MemberRecord]:
    """Every member record, sorted by DID."""
    for key, _ in view.iter_prefix(keys.MEMBER_PREFIX):
        rec = load_record(view, key)
        if rec is not None:
            yield cast(MemberRecord, rec)


def find_org(view: Reader, org: str) -> OrganizationRecord | None:
    """The organization record, or None."""
    return cast("OrganizationRecord | None", load_record(view, keys.org_key(org)))


def org_exists(view: Reader, org: str) -> bool:
    """True if the organization is registered."""
    return view.get(keys.org_key(org)) is not None


def store_org(state: Writer, org: OrganizationRecord) -> None:
    """Write an organization record (validated by organization_record or derived from a stored one)."""
    store_record(state, keys.org_key(org["id"]), org)


def delete_org(state: Writer, org: str) -> None:
    """Remove an organization's record (its members are suspended by the caller)."""
    state.delete(keys.org_key(org))


def org_ids(view: Reader) -> list[str]:
    """The registered organization ids, sorted (a listing only: no record is read)."""
    return [key[len(_ORG_PREFIX):].decode("ascii") for key, _ in view.iter_prefix(_ORG_PREFIX)]


def organizations(view: Reader) -> list[OrganizationRecord]:
    """Every organization record, sorted by id, decoded from the listing itself (no further reads)."""
    return [cast(OrganizationRecord, decode_record(key, raw)) for key, raw in view.iter_prefix(_ORG_PREFIX)]
