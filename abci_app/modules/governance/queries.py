"""Read-only queries of the governance module: proposals, the parameters and the validator set."""

from __future__ import annotations

from collections.abc import Callable

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.governance import keys
from fedledger.abci_app.modules.governance.actions import ACTIONS
from fedledger.abci_app.modules.governance.params import effective_weights, load_params
from fedledger.abci_app.modules.governance.validators import VALIDATORS_KEY, validator_set_answer
from fedledger.abci_app.records import load_record

__all__ = ["DEFAULT_LIST", "MAX_LIST", "QUERIES"]

DEFAULT_LIST = 20
MAX_LIST = 100


def _number(text: str, what: str, hi: int) -> int:
    if not text.isdigit() or len(text) > 10 or not 1 <= int(text) <= hi:
        raise TxError(Code.BAD_QUERY, f"{what} must be an integer in [1, {hi}], got {text[:20]!r}")
    return int(text)


def _q_proposal(view: Reader, args: list[str]) -> QueryAnswer:
    """/proposal/ID: the proposal with its votes, tally and outcome (ID as 7 or 0000000007)."""
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /proposal/ID")
    key = keys.proposal_key(_number(args[0], "proposal id", 10**10 - 1))
    rec = load_record(view, key)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"proposal {int(args[0])} not found")
    return QueryAnswer(rec, key)


def _q_proposals(view: Reader, args: list[str]) -> QueryAnswer:
    """/proposals[/LIMIT]: the newest proposals first, at most LIMIT (default 20, at most 100)."""
    if len(args) > 1:
        raise TxError(Code.BAD_QUERY, "usage: /proposals[/LIMIT]")
    limit = _number(args[0], "limit", MAX_LIST) if args else DEFAULT_LIST
    raw = view.get(keys.NEXT_ID_KEY)
    newest = (int(raw) if raw is not None else 1) - 1
    out = []
    for pid in range(newest, max(0, newest - limit), -1):
        rec = load_record(view, keys.proposal_key(pid))
        if rec is not None:
            out.append(rec)
    return QueryAnswer({"proposals": out, "total": newest}, None)


def _q_governance(view: Reader, args: list[str]) -> QueryAnswer:
    """/governance: the parameters, every registered organization's effective weight, and the actions."""
    if args:
        raise TxError(Code.BAD_QUERY, "usage: /governance")
    params = load_params(view)
    weights = effective_weights(view, params)
    raw = view.get(keys.NEXT_ID_KEY)
    return QueryAnswer({"params": params, "weights": {org: w for org, w in weights},
                        "total_weight": sum(w for _, w in weights), "actions": sorted(ACTIONS),
                        "next_proposal_id": int(raw) if raw is not None else 1}, None)


def _q_validators(view: Reader, args: list[str]) -> QueryAnswer:
    """/validators: the validator set as the app sees it (each entry with the height it signs from)."""
    if args:
        raise TxError(Code.BAD_QUERY, "usage: /validators")
    # One record holds the whole set, so its proof proves the answer (absent: a chain without genesis validators).
    return QueryAnswer(validator_set_answer(view), VALIDATORS_KEY)


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {
    "proposal": _q_proposal, "proposals": _q_proposals, "governance": _q_governance,
    "validators": _q_validators,
}
