"""Read-only queries of the lifecycle module: a version's attestations and a task's lifecycle."""

from __future__ import annotations

from collections.abc import Callable

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.federation.keeper import task_exists, version_exists
from fedledger.abci_app.modules.lifecycle import keys
from fedledger.abci_app.modules.lifecycle.decisions import attestations
from fedledger.abci_app.modules.lifecycle.params import task_params
from fedledger.abci_app.modules.lifecycle.pointer import pointer
from fedledger.abci_app.records import load_record

__all__ = ["QUERIES"]


def _num(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise TxError(Code.BAD_QUERY, f"{text!r} is not a version number")
    return int(text)


def _q_attestations(view: Reader, args: list[str]) -> QueryAnswer:
    """/attestations/TASK/VERSION: every attestation of the version, sorted by evaluator DID."""
    if len(args) != 2:
        raise TxError(Code.BAD_QUERY, "usage: /attestations/TASK/VERSION")
    task_id, version = args[0], _num(args[1])
    if not version_exists(view, task_id, version):
        raise TxError(Code.QUERY_NOT_FOUND, f"version {version} of task {task_id!r} not found")
    return QueryAnswer(attestations(view, task_id, version), None)


def _q_lifecycle(view: Reader, args: list[str]) -> QueryAnswer:
    """/lifecycle/TASK: params in force, last good version, and every decision in order."""
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /lifecycle/TASK")
    task_id = args[0]
    if not task_exists(view, task_id):
        raise TxError(Code.QUERY_NOT_FOUND, f"task {task_id!r} not found")
    ptr = pointer(view, task_id)
    history = [load_record(view, k) for k, _ in view.iter_prefix(keys.history_prefix(task_id))]
    return QueryAnswer({"task_id": task_id, "params": task_params(view, task_id), "last_good": ptr["last_good"],
                        "last_good_height": ptr["last_good_height"], "decisions": ptr["decisions"],
                        "history": history}, None)


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {
    "attestations": _q_attestations,
    "lifecycle": _q_lifecycle,
}
