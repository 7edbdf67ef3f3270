"""Read-only queries of the inference module: nodes, policies, params, batches, requests and slashings.

Every answer is built from point reads (the meta counters, then records by number or by key), so
`--verify` proves it without a listing rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.fields import HEX64, ID_RE
from fedledger.abci_app.modules.inference import keys
from fedledger.abci_app.modules.inference.encrypted import encrypted_record
from fedledger.abci_app.modules.inference.he_receipts import REQUEST_ID
from fedledger.abci_app.modules.inference.keeper import find_node, find_node_by_did, meta, nodes, policy
from fedledger.abci_app.modules.inference.params import params
from fedledger.abci_app.modules.inference.records import BatchRecord, SlashRecord
from fedledger.abci_app.records import load_record

__all__ = ["PAGE", "QUERIES"]

PAGE = 100  # most batches or slashings one listing answer holds


def _one(args: list[str], usage: str) -> str:
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, f"usage: {usage}")
    return args[0]


def _num(text: str, what: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise TxError(Code.BAD_QUERY, f"{text!r} is not a {what}")
    return int(text)


def _q_nodes(view: Reader, args: list[str]) -> QueryAnswer:
    """/inference-nodes: every registered inference node, in registration order."""
    if args:
        raise TxError(Code.BAD_QUERY, "usage: /inference-nodes")
    return QueryAnswer({"count": meta(view)["nodes"], "nodes": nodes(view)}, None)


def _q_node(view: Reader, args: list[str]) -> QueryAnswer:
    """/inference-node/DID_OR_KEY: one node record."""
    who = _one(args, "/inference-node/DID_OR_KEY")
    rec = find_node(view, who) if HEX64.match(who) else find_node_by_did(view, who)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"{who[:64]} is not a registered inference node")
    return QueryAnswer(rec, keys.node_key(rec["seq"]))


def _q_policy(view: Reader, args: list[str]) -> QueryAnswer:
    """/inference-policy/TASK: the task's tier and k (the default when its owner set none)."""
    task_id = _one(args, "/inference-policy/TASK")
    if not ID_RE.match(task_id):
        raise TxError(Code.BAD_QUERY, f"{task_id[:64]!r} is not a task id")
    return QueryAnswer(policy(view, task_id), keys.policy_key(task_id))


def _q_params(view: Reader, args: list[str]) -> QueryAnswer:
    """/inference-params: penalties and the suspension rule."""
    if args:
        raise TxError(Code.BAD_QUERY, "usage: /inference-params")
    return QueryAnswer(params(view), keys.PARAMS_KEY)


def _batch(view: Reader, seq: int) -> BatchRecord:
    rec = load_record(view, keys.batch_key(seq))
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"receipts batch {seq} not found ({meta(view)['batches']} reported)")
    return cast(BatchRecord, rec)


def _q_batch(view: Reader, args: list[str]) -> QueryAnswer:
    """/inference-batch/SEQ or /inference-batch/latest: one reported batch with its tallies."""
    text = _one(args, "/inference-batch/SEQ or /inference-batch/latest")
    seq = meta(view)["batches"] if text == "latest" else _num(text, "batch number")
    return QueryAnswer(_batch(view, seq), keys.batch_key(seq))


def _q_request(view: Reader, args: list[str]) -> QueryAnswer:
    """/inference-request/HASH: which version and nodes answered a request, how they agreed, and its batch."""
    rid = _one(args, "/inference-request/REQUEST_HASH")
    if not HEX64.match(rid):
        raise TxError(Code.BAD_QUERY, "a request hash is 64 lower-case hex characters")
    where = load_record(view, keys.request_key(rid))
    if where is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"request {rid[:16]}… was never reported")
    batch = _batch(view, int(where["batch"]))
    answer: dict[str, Any] = {**batch["requests"][int(where["index"])], "batch": batch["seq"],
                              "task_id": batch["task_id"], "height": batch["height"], "root": batch["root"]}
    return QueryAnswer(answer, None)


def _q_slashes(view: Reader, args: list[str]) -> QueryAnswer:
    """/inference-slashes or /inference-slashes/FROM_SEQ: {count, slashes: up to PAGE records}."""
    if len(args) > 1:
        raise TxError(Code.BAD_QUERY, "usage: /inference-slashes or /inference-slashes/FROM_SEQ")
    count = meta(view)["slashes"]
    start = max(1, _num(args[0], "slash number") if args else count - PAGE + 1)
    out: list[SlashRecord] = []
    for seq in range(start, min(count, start + PAGE - 1) + 1):
        rec = load_record(view, keys.slash_key(seq))
        if rec is None:
            raise RuntimeError(f"state invariant violated: slash {seq} below the count is missing")
        out.append(cast(SlashRecord, rec))
    return QueryAnswer({"count": count, "slashes": out}, None)


def _q_encrypted(view: Reader, args: list[str]) -> QueryAnswer:
    """/inference-encrypted/REQUEST_ID: the record that a critical request was answered over CKKS, and by whom."""
    rid = _one(args, "/inference-encrypted/REQUEST_ID")
    if not REQUEST_ID.fullmatch(rid):
        raise TxError(Code.BAD_QUERY, "an encrypted request id is 32 lower-case hex characters")
    rec = encrypted_record(view, rid)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"encrypted request {rid} was never reported")
    return QueryAnswer(rec, keys.encrypted_key(rid))


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {
    "inference-nodes": _q_nodes,
    "inference-node": _q_node,
    "inference-policy": _q_policy,
    "inference-params": _q_params,
    "inference-batch": _q_batch,
    "inference-request": _q_request,
    "inference-slashes": _q_slashes,
    "inference-encrypted": _q_encrypted,
}

