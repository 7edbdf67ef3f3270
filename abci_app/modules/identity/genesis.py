"""The identity genesis section: the consortium's organizations, their issuers, roles and caps."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.context import Writer
from fedledger.abci_app.did.credentials import DEFAULT_ORG_ROLES, ROLES, key_of_did
from fedledger.abci_app.did.ecdsa_sd.multikey import decode_p256_public
from fedledger.abci_app.modules.identity import keys
from fedledger.abci_app.modules.identity.records import OrganizationRecord
from fedledger.abci_app.records import store_record

__all__ = ["init_genesis", "organization_record"]

_ORG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CLAIM_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def organization_record(org: Mapping[str, Any]) -> OrganizationRecord:
    """Validate one organization entry and return its canonical record; ValueError says what is wrong."""
    unknown = set(org) - {"id", "name", "issuers", "enrollment_cap", "roles", "admins", "disclosure_policy"}
    if unknown:
        raise ValueError(f"organization entry has unknown fields {sorted(unknown)}")
    oid = org.get("id")
    if not isinstance(oid, str) or not _ORG_RE.match(oid):
        raise ValueError(f"organization id {oid!r} must be 1-64 chars of a-z, 0-9, '-' or '_'")
    issuers = org.get("issuers")
    if not isinstance(issuers, list) or not issuers:
        raise ValueError(f"organization {oid!r} needs a non-empty list of issuer DIDs")
    for did in issuers:
        _check_issuer(did)
    cap = org.get("enrollment_cap")
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= 1_000_000:
        raise ValueError(f"organization {oid!r}: enrollment_cap must be an integer in [1, 1000000]")
    roles = org.get("roles", list(DEFAULT_ORG_ROLES))
    if not isinstance(roles, list) or not set(roles) <= set(ROLES):
        raise ValueError(f"organization {oid!r}: roles must be a subset of {list(ROLES)}")
    admins = org.get("admins", [])
    if not isinstance(admins, list) or not all(isinstance(a, str) for a in admins):
        raise ValueError(f"organization {oid!r}: admins must be a list of DIDs")
    name = org.get("name", oid)
    if not isinstance(name, str):
        raise ValueError(f"organization {oid!r}: name must be a string")
    record: OrganizationRecord = {"id": oid, "name": name, "issuers": sorted(issuers), "enrollment_cap": cap,
                                  "roles": sorted(set(roles)), "admins": sorted(admins)}
    if "disclosure_policy" in org:
        record["disclosure_policy"] = _disclosure_policy(oid, org["disclosure_policy"])
    return record


def _check_issuer(did: Any) -> None:
    """An issuer is an Ed25519 did:key (eddsa-jcs-2022 credentials) or a P-256 one (ecdsa-sd-2023)."""
    try:
        key_of_did(did)
        return
    except ValueError:
        pass
    if not isinstance(did, str) or not did.startswith("did:key:zDn"):
        raise ValueError(f"issuer {did!r} must be an Ed25519 or P-256 did:key")
    decode_p256_public(did[len("did:key:"):])  # MultikeyError (a ValueError) if not a P-256 key


def _disclosure_policy(oid: str, policy: Any) -> dict[str, list[str]]:
    if not isinstance(policy, dict) or not policy:
        raise ValueError(f"organization {oid!r}: disclosure_policy must map claim names to allowed values")
    out: dict[str, list[str]] = {}
    for claim in sorted(policy):
        allowed = policy[claim]
        if not isinstance(claim, str) or not _CLAIM_RE.match(claim):
            raise ValueError(f"organization {oid!r}: disclosure_policy claim {claim!r} is not a claim name")
        if not isinstance(allowed, list) or not all(isinstance(v, str) and v for v in allowed):
            raise ValueError(f"organization {oid!r}: disclosure_policy[{claim!r}] must be a list of values")
        out[claim] = sorted(set(allowed))
    return out


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:  # a genesis section: free-form JSON
    """Write the organizations of the genesis section (`{"organizations": [...]}`)."""
    unknown = set(section) - {"organizations"}
    if unknown:
        raise ValueError(f"identity genesis section has unknown fields {sorted(unknown)}")
    seen: set[str] = set()
    for org in section.get("organizations", []):
        record = organization_record(org)
        if record["id"] in seen:
            raise ValueError(f"organization {record['id']!r} appears twice in genesis")
        seen.add(record["id"])
        store_record(state, keys.org_key(record["id"]), record)
