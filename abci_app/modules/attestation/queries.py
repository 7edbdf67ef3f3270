"""Read-only queries of the attestation module: a DID's record and the params (point reads, so provable)."""

from __future__ import annotations

from collections.abc import Callable

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.attestation import keys
from fedledger.abci_app.modules.attestation.keeper import find_attestation
from fedledger.abci_app.modules.attestation.params import params
from fedledger.abci_app.modules.base import QueryAnswer

__all__ = ["QUERIES"]


def _q_record(view: Reader, args: list[str]) -> QueryAnswer:
    """/attestation/DID: the DID's latest attestation record (valid or refused, with the reason)."""
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /attestation/DID")
    rec = find_attestation(view, args[0])
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"{args[0][:64]} has submitted no attestation")
    return QueryAnswer(rec, keys.record_key(args[0]))


def _q_params(view: Reader, args: list[str]) -> QueryAnswer:
    """/attestation-params: how long a verified attestation counts."""
    if args:
        raise TxError(Code.BAD_QUERY, "usage: /attestation-params")
    return QueryAnswer(params(view), keys.PARAMS_KEY)


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {"attestation": _q_record,
                                                                  "attestation-params": _q_params}
