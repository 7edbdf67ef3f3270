"""Who may send what: the enrolled member behind a signing key, and the roles each action needs."""

from __future__ import annotations

from typing import cast

from fedledger.abci_app.context import BlockContext, Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.identity import keys
from fedledger.abci_app.modules.identity.records import MemberRecord
from fedledger.abci_app.records import load_record

__all__ = ["member_for_key", "require_member"]


def member_for_key(view: Reader, signer: str, ctx: BlockContext) -> MemberRecord | None:
    """The member whose current key is `signer`, if active and its credential is valid at the block's time.

    A member's rights end with its credential's validUntil (renewal is a new admission). The
    block time is unknown only in CheckTx before this process saw a block; FinalizeBlock always
    knows it.
    """
    binding = view.get(keys.key_binding_key(signer))
    if binding is None:
        return None
    member = cast("MemberRecord | None", load_record(view, keys.member_key(binding.decode("ascii"))))
    if member is None or member["status"] != "active" or member["key"] != signer:
        return None
    if ctx.time_ns > 0 and ctx.time_ns // 1_000_000_000 >= member["valid_until"]:
        return None
    return member


def require_member(view: Reader, signer: str, ctx: BlockContext, roles: tuple[str, ...] | None = None,
                   action: str = "send this tx") -> MemberRecord:
    """The signer's active member record; UNAUTHORIZED unless enrolled with one of `roles` (None: any)."""
    member = member_for_key(view, signer, ctx)
    if member is None:
        raise TxError(Code.UNAUTHORIZED, "signer is not an enrolled member with a valid credential: obtain an "
                                         "admission credential and run `fedledger admit`")
    if roles is not None and member["role"] not in roles:
        raise TxError(Code.UNAUTHORIZED, f"role {member['role']!r} may not {action}; it needs one of {list(roles)}")
    return member
