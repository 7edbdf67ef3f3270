"""Read-only queries of the federation module: task, round, contribution, version, lineage."""

from __future__ import annotations

from collections.abc import Callable

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.listing import ListingRule, counted_listing, numbered_listing
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.federation import keys
from fedledger.abci_app.modules.federation.records import VersionRecord
from fedledger.abci_app.records import load_record

__all__ = ["LISTINGS", "QUERIES"]


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
    rec: VersionRecord = head.value
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


def _arity(args: list[str], n: int, usage: str) -> None:
    if len(args) != n:
        raise TxError(Code.BAD_QUERY, f"usage: {usage}")


def _q_task(view: Reader, args: list[str]) -> QueryAnswer:
    _arity(args, 1, "/task/TASK")
    return _need(view, keys.task_key(args[0]), f"task {args[0]!r}")


def _q_round(view: Reader, args: list[str]) -> QueryAnswer:
    _arity(args, 2, "/round/TASK/ROUND")
    return _need(view, keys.round_key(args[0], _num(args[1])), f"round {args[1]} of task {args[0]!r}")


def _q_contributions(view: Reader, args: list[str]) -> QueryAnswer:
    _arity(args, 2, "/contributions/TASK/ROUND")
    prefix = keys.contribution_prefix(args[0], _num(args[1]))
    return QueryAnswer([load_record(view, k) for k, _ in view.iter_prefix(prefix)], None)


def _q_contribution(view: Reader, args: list[str]) -> QueryAnswer:
    _arity(args, 3, "/contribution/TASK/ROUND/KEY")
    return _need(view, keys.contribution_key(args[0], _num(args[1]), args[2]),
                 f"contribution of {args[2][:16]}… to round {args[1]} of {args[0]!r}")


def _q_version(view: Reader, args: list[str]) -> QueryAnswer:
    _arity(args, 2, "/version/TASK/VERSION|latest")
    if args[1] == "latest":
        task = _need(view, keys.task_key(args[0]), f"task {args[0]!r}").value
        return _need(view, keys.version_key(args[0], task["latest_version"]), "latest version")
    return _need(view, keys.version_key(args[0], _num(args[1])), f"version {args[1]} of task {args[0]!r}")


def _q_versions(view: Reader, args: list[str]) -> QueryAnswer:
    _arity(args, 1, "/versions/TASK")
    return QueryAnswer([load_record(view, k) for k, _ in view.iter_prefix(keys.version_prefix(args[0]))], None)


def _q_lineage(view: Reader, args: list[str]) -> QueryAnswer:
    _arity(args, 2, "/lineage/TASK/VERSION")
    return _lineage(view, args[0], _num(args[1]))


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {
    "task": _q_task,
    "round": _q_round,
    "contributions": _q_contributions,
    "contribution": _q_contribution,
    "version": _q_version,
    "versions": _q_versions,
    "lineage": _q_lineage,
}

_TASK = rb"([a-z0-9][a-z0-9_-]{0,63})"  # federation's task id syntax

# The listings above are provable because these rules pin down what the prefixes hold:
# commit_contribution counts a round's contributions in the round record (and nothing deletes
# them); versions are written 0, 1, 2... by create_task and propose_version (and never deleted).
LISTINGS: tuple[ListingRule, ...] = (
    counted_listing("contributions of a round", rb"fl/contrib/" + _TASK + rb"/([0-9]{10,})/",
                    lambda a: keys.contribution_prefix(a[0], int(a[1])),
                    lambda a: keys.round_key(a[0], int(a[1])), "contributions"),
    numbered_listing("versions of a task", rb"fl/version/" + _TASK + rb"/",
                     lambda a: keys.version_prefix(a[0]), lambda a, i: keys.version_key(a[0], i), first=0),
)
