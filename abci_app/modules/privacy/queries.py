"""Read-only queries of the privacy module: a task's policy and a participant's spend."""

from __future__ import annotations

from collections.abc import Callable

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.privacy import keys
from fedledger.abci_app.modules.privacy.budget import MICRO
from fedledger.abci_app.records import load_record

__all__ = ["QUERIES"]


def _q_budget(view: Reader, args: list[str]) -> QueryAnswer:
    """/budget/TASK/DID: spent, remaining and the policy; a participant with no spend has spent 0."""
    if len(args) != 2:
        raise TxError(Code.BAD_QUERY, "usage: /budget/TASK/DID")
    task_id, did = args
    policy = load_record(view, keys.policy_key(task_id))
    if policy is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"task {task_id!r} has no privacy policy (does it exist?)")
    spend = load_record(view, keys.spend_key(task_id, did))
    spent = spend["spent_micro"] if spend is not None else 0
    return QueryAnswer({
        "task_id": task_id, "did": did, "delta": policy["delta"], "unit": f"1/{MICRO} epsilon",
        "epsilon_budget_micro": policy["epsilon_micro"], "epsilon_spent_micro": spent,
        "epsilon_remaining_micro": max(0, policy["epsilon_micro"] - spent),
        "contributions": spend["contributions"] if spend is not None else 0,
        # the composed RDP curve, so a client plans its next charge exactly as the chain will compute it
        "rdp": spend["rdp"] if spend is not None else None,
    }, keys.spend_key(task_id, did) if spend is not None else None)


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {"budget": _q_budget}
