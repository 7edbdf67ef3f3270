"""The identity module's chain records: organizations (genesis or governance) and enrolled members.

Light on purpose (typing only): off-chain code reads these shapes from query answers too.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = ["MemberRecord", "MemberStatus", "OrganizationRecord"]

#: active: may sign; revoked: its credential was revoked; organization_removed: governance removed its org.
MemberStatus = Literal["active", "revoked", "organization_removed"]


class OrganizationRecord(TypedDict):
    """`id/org/<org>`: an organization, its credential issuers, enrollment cap, grantable roles and admins."""

    id: str
    name: str
    issuers: list[str]  # sorted issuer DIDs
    enrollment_cap: int
    roles: list[str]  # sorted
    admins: list[str]  # sorted DIDs that vote for it in governance
    # Claims a selectively disclosed credential must reveal (admit_sd): claim -> allowed values
    # (empty list: any value). Absent on organizations that never set one, so their records stay as they were.
    disclosure_policy: NotRequired[dict[str, list[str]]]


class MemberRecord(TypedDict):
    """`id/member/<did>`: a member admitted with a verifiable credential."""

    did: str
    key: str  # its current signing key (hex)
    organization: str
    role: str
    tasks: list[str]  # the tasks its credential covers; empty: all
    credential_id: str
    issuer: str
    valid_until: int  # unix seconds; rights end then
    enrolled_height: int
    status: MemberStatus
