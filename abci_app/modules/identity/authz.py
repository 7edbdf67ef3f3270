"""Who may send what: the enrolled member behind a signing key, and the roles each action needs."""

from __future__ import annotations

from typing import Any

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.identity import keys
from fedledger.abci_app.records import load_record

__all__ = ["member_for_key", "require_member"]


def member_for_key(view: Reader, signer: str) -> dict[str, Any] | None:
    """The active member record whose current key is `signer`, or None."""
    binding = view.get(keys.key_binding_key(signer))
    if binding is None:
        return None
    member = load_record(view, keys.member_key(binding.decode("ascii")))
    if member is None or member["status"] != "active" or member["key"] != signer:
        return None
    return member


def require_member(view: Reader, signer: str, roles: tuple[str, ...] | None = None,
                   action: str = "send this tx") -> dict[str, Any]:
    """The signer's active member record; UNAUTHORIZED unless enrolled with one of `roles` (None: any)."""
    member = member_for_key(view, signer)
    if member is None:
        raise TxError(Code.UNAUTHORIZED, "signer is not an enrolled member: obtain an admission credential "
                                         "and run `fedledger admit`")
    if roles is not None and member["role"] not in roles:
        raise TxError(Code.UNAUTHORIZED, f"role {member['role']!r} may not {action}; it needs one of {list(roles)}")
    return member
