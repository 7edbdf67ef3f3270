"""Identity module: organizations, DID/VC admission, revocation, key rotation, and role checks.

The package imports nothing when it loads (see `base.lazy_exports`): other modules use
`keeper.py` and `records.py`; the registry takes `module.py`'s MODULE.
"""

from __future__ import annotations

from fedledger.abci_app.modules.base import lazy_exports

__all__ = [
    "MODULE",
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

__getattr__ = lazy_exports(__name__, {
    "MODULE": "module",
    "delete_org": "keeper",
    "find_member": "keeper",
    "find_org": "keeper",
    "member_exists": "keeper",
    "member_for_key": "keeper",
    "members": "keeper",
    "org_exists": "keeper",
    "org_ids": "keeper",
    "organization_record": "keeper",
    "organizations": "keeper",
    "require_member": "keeper",
    "store_member": "keeper",
    "store_org": "keeper",
})
