"""Read-only queries of the identity module: organizations, members, and which DID a key acts for."""

from __future__ import annotations

from collections.abc import Callable

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.identity import keys
from fedledger.abci_app.records import load_record

__all__ = ["QUERIES"]


def _one(view: Reader, key: bytes, what: str) -> QueryAnswer:
    rec = load_record(view, key)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"{what} not found")
    return QueryAnswer(rec, key)


def _q_org(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /org/ORG")
    return _one(view, keys.org_key(args[0]), f"organization {args[0]!r}")


def _q_member(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /member/DID")
    return _one(view, keys.member_key(args[0]), f"member {args[0]}")


def _q_whois(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /whois/KEY")
    did = view.get(keys.key_binding_key(args[0]))
    if did is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"key {args[0][:16]}… acts for no enrolled DID")
    return _one(view, keys.member_key(did.decode("ascii")), f"member {did.decode()}")


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {"org": _q_org, "member": _q_member,
                                                                 "whois": _q_whois}
