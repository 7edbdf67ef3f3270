"""Read-only queries of the zk module: the pinned SRS, a version's circuit, a request's proof verdict."""

from __future__ import annotations

from collections.abc import Callable

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.fields import ID_RE
from fedledger.abci_app.modules.zk import keys
from fedledger.abci_app.modules.zk.keeper import find_circuit, find_proof
from fedledger.abci_app.modules.zk.msgs import INPUT_MODES
from fedledger.abci_app.modules.zk.params import params

__all__ = ["QUERIES"]


def _task(text: str) -> str:
    if not ID_RE.match(text):
        raise TxError(Code.BAD_QUERY, f"{text[:64]!r} is not a task id")
    return text


def _q_params(view: Reader, args: list[str]) -> QueryAnswer:
    """/zk-params: the SRS sha256 and logrows the chain pins."""
    if args:
        raise TxError(Code.BAD_QUERY, "usage: /zk-params")
    return QueryAnswer(params(view), keys.PARAMS_KEY)


def _q_circuit(view: Reader, args: list[str]) -> QueryAnswer:
    """/zk-circuit/TASK/VERSION/MODE: the registered settings, vk and their hashes."""
    if len(args) != 3 or not args[1].isdigit() or len(args[1]) > 12 or args[2] not in INPUT_MODES:
        raise TxError(Code.BAD_QUERY, "usage: /zk-circuit/TASK/VERSION/hashed|private")
    task_id, version, mode = _task(args[0]), int(args[1]), args[2]
    rec = find_circuit(view, task_id, version, mode)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"version {version} of {task_id!r} has no {mode} zk circuit")
    return QueryAnswer(rec, keys.circuit_key(task_id, version, mode))


def _q_proof(view: Reader, args: list[str]) -> QueryAnswer:
    """/zk-proof/TASK/REQUEST_ID: the chain's verdict on the proof of one request."""
    if len(args) != 2 or not 1 <= len(args[1]) <= 128:
        raise TxError(Code.BAD_QUERY, "usage: /zk-proof/TASK/REQUEST_ID")
    task_id = _task(args[0])
    rec = find_proof(view, task_id, args[1])
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"no proof was submitted for request {args[1][:64]!r} of {task_id!r}")
    return QueryAnswer(rec, keys.proof_key(task_id, args[1]))


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {
    "zk-params": _q_params,
    "zk-circuit": _q_circuit,
    "zk-proof": _q_proof,
}
