"""Read-only query of the secagg module: the bulletin board of one secure round."""

from __future__ import annotations

from collections.abc import Callable

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.secagg import keys
from fedledger.abci_app.records import load_record

__all__ = ["QUERIES"]


def _q_board(view: Reader, args: list[str]) -> QueryAnswer:
    """`/secagg/TASK/ROUND`: every keys, shares and unmask post of the round, keyed by participant."""
    if len(args) != 2 or not args[1].isdigit() or len(args[1]) > 12:
        raise TxError(Code.BAD_QUERY, "usage: /secagg/TASK/ROUND")
    task_id, number = args[0], int(args[1])
    board: dict[str, dict[str, object]] = {}
    for kind in keys.KINDS:
        prefix = keys.post_prefix(kind, task_id, number)
        board[kind] = {k[len(prefix):].decode("ascii"): load_record(view, k) for k, _ in view.iter_prefix(prefix)}
    return QueryAnswer(board, None)


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {"secagg": _q_board}
