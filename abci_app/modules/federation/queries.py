"""Read-only queries of the federation module: task, round, contribution, version, lineage."""

from __future__ import annotations

import re
from typing import Any

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.federation import keys
from fedledger.abci_app.records import load_record

__all__ = ["QueryAnswer", "route_query"]

_SEG = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class QueryAnswer:
    """A query's JSON answer and, for single-record answers, the store key it came from (for proofs)."""

    def __init__(self, value: Any, key: bytes | None) -> None:
        self.value = value
        self.key = key


def _num(text: str) -> int:
    if not text.isdigit() or len(text) > 12:
        raise TxError(Code.BAD_QUERY, f"{text!r} is not a round or version number")
    return int(text)


def _need(view: Reader, key: bytes, what: str) -> QueryAnswer:
    rec = load_record(view, key)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"{what} not found")
    return QueryAnswer(rec, key)


def _lineage(view: Reader, task_id: str, version: int) -> QueryAnswer:
    """A version, the exact contributions it included, and its ancestry back to version 0."""
    head = _need(view, keys.version_key(task_id, version), f"version {version} of task {task_id!r}")
    rec: dict[str, Any] = head.value
    contributions = []
    for who in rec["contributors"]:
        contrib = load_record(view, keys.contribution_key(task_id, rec["round"], who))
        if contrib is None:
            raise RuntimeError(f"state invariant violated: version {version} names a missing contribution")
        contributions.append(contrib)
    ancestors = []
    parent = rec["parent"]
    while parent is not None:
        anc = load_record(view, keys.version_key(task_id, parent))
        if anc is None:
            raise RuntimeError(f"state invariant violated: version {parent} missing from the lineage")
        ancestors.append({k: anc[k] for k in ("version", "round", "cid", "sha256", "height", "status")})
        parent = anc["parent"]
    return QueryAnswer({"version": rec, "contributions": contributions, "ancestors": ancestors}, None)


def route_query(view: Reader, path: str) -> QueryAnswer:
    """Answer a query path such as /task/T, /round/T/R, /contribution/T/R/KEY, /version/T/V, /lineage/T/V."""
    parts = [p for p in path.split("/") if p]
    if not parts or not all(_SEG.match(p) for p in parts):
        raise TxError(Code.BAD_QUERY, f"malformed query path {path!r}")
    kind, args = parts[0], parts[1:]
    if kind == "task" and len(args) == 1:
        return _need(view, keys.task_key(args[0]), f"task {args[0]!r}")
    if kind == "round" and len(args) == 2:
        rnd = _need(view, keys.round_key(args[0], _num(args[1])), f"round {args[1]} of task {args[0]!r}")
        return rnd
    if kind == "contributions" and len(args) == 2:
        prefix = keys.contribution_prefix(args[0], _num(args[1]))
        return QueryAnswer([load_record(view, k) for k, _ in view.iter_prefix(prefix)], None)
    if kind == "contribution" and len(args) == 3:
        return _need(view, keys.contribution_key(args[0], _num(args[1]), args[2]),
                     f"contribution of {args[2][:16]}… to round {args[1]} of {args[0]!r}")
    if kind == "version" and len(args) == 2:
        if args[1] == "latest":
            task = _need(view, keys.task_key(args[0]), f"task {args[0]!r}").value
            return _need(view, keys.version_key(args[0], task["latest_version"]), "latest version")
        return _need(view, keys.version_key(args[0], _num(args[1])), f"version {args[1]} of task {args[0]!r}")
    if kind == "versions" and len(args) == 1:
        return QueryAnswer([load_record(view, k) for k, _ in view.iter_prefix(keys.version_prefix(args[0]))], None)
    if kind == "lineage" and len(args) == 2:
        return _lineage(view, args[0], _num(args[1]))
    if kind == "participant" and len(args) == 1:
        return _need(view, keys.participant_key(args[0]), f"participant {args[0][:16]}…")
    raise TxError(Code.BAD_QUERY, f"unknown query {path!r}; try /task/T, /round/T/R, /contributions/T/R, "
                                  "/contribution/T/R/KEY, /version/T/V|latest, /versions/T, /lineage/T/V, "
                                  "/participant/KEY, /nonce/KEY")
