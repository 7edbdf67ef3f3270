"""The inference module's handlers: register a node, set a task's tier, tally receipt batches, judge fraud proofs.

Every handler checks fully against `view` before it writes anything, so CheckTx (state None)
and FinalizeBlock agree on which txs pass.
"""

from __future__ import annotations

import hashlib

from fedledger.abci_app.binary_merkle import MerkleTree
from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.attestation.keeper import require_attested
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.federation.keeper import find_version, load_task
from fedledger.abci_app.modules.identity.keeper import require_member
from fedledger.abci_app.modules.inference import keys
from fedledger.abci_app.modules.inference.keeper import (
    find_node,
    find_node_by_did,
    meta,
    policy,
    store_meta,
    store_node,
)
from fedledger.abci_app.modules.inference.msgs import RegisterNode, ReportFraud, ReportReceipts, SetInferencePolicy
from fedledger.abci_app.modules.inference.params import params
from fedledger.abci_app.modules.inference.receipts import agree, request_hash
from fedledger.abci_app.modules.inference.records import BatchRequest, NodeRecord, SlashRecord
from fedledger.abci_app.modules.inference.tally import tally
from fedledger.abci_app.modules.reputation.keeper import on_inference_penalty
from fedledger.abci_app.records import store_record

__all__ = ["HANDLERS"]


def register_node(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                  msg: RegisterNode) -> list[Event]:
    """Register an admitted `inference` member's endpoint, or move it; a suspended node stays suspended."""
    member = require_member(view, signer, ctx, ("inference",), "register as an inference node")
    for task_id in msg.tasks:
        load_task(view, task_id)
        need = policy(view, task_id).get("require_tee")
        if need is not None:  # a TEE task: the node's DID must hold a valid, unexpired SEV-SNP attestation
            require_attested(view, ctx, member["did"], signer, need, f"serving task {task_id!r}")
    if member["tasks"] and set(msg.tasks) - set(member["tasks"]):
        outside = sorted(set(msg.tasks) - set(member["tasks"]))
        raise TxError(Code.UNAUTHORIZED, f"this node's credential does not cover tasks {outside}")
    existing = find_node(view, signer)
    m = meta(view)
    if existing is not None:
        rec = existing
        rec["endpoint"] = msg.endpoint
        rec["tasks"] = list(msg.tasks)
    else:
        m["nodes"] += 1
        rec = {"seq": m["nodes"], "key": signer, "did": member["did"], "endpoint": msg.endpoint,
               "tasks": list(msg.tasks),
               "registered_height": ctx.height, "status": "active", "agreed": 0, "dissented": 0,
               "recent_dissents": [], "suspended_height": None, "suspended_reason": None}
    if state is not None:
        store_node(state, rec)
        store_meta(state, m)
    return [fl_event("register_inference_node", signer, did=member["did"], endpoint=msg.endpoint, seq=rec["seq"],
                     tasks=",".join(msg.tasks))]


def set_policy(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
               msg: SetInferencePolicy) -> list[Event]:
    """The task owner sets the tier (general | critical) and k, the nodes each request goes to."""
    task = load_task(view, msg.task_id)
    if signer != task["owner"]:
        raise TxError(Code.UNAUTHORIZED, f"only the owner of task {msg.task_id!r} sets its inference policy")
    if state is not None:
        rec: dict[str, object] = {"task_id": msg.task_id, "tier": msg.tier, "k": msg.k, "set_height": ctx.height}
        if msg.guarantees:
            rec["guarantees"] = list(msg.guarantees)
        if msg.require_tee is not None:
            rec["require_tee"] = dict(msg.require_tee)
        store_record(state, keys.policy_key(msg.task_id), rec)
    return [fl_event("set_inference_policy", signer, task=msg.task_id, tier=msg.tier, k=msg.k,
                     **({"guarantees": ",".join(msg.guarantees)} if msg.guarantees else {}),
                     **({"tee": "sev-snp"} if msg.require_tee else {}))]


def _registered_node(view: Reader, did: str, what: str) -> NodeRecord:
    rec = find_node_by_did(view, did)
    if rec is None:
        raise TxError(Code.INFERENCE_NODE, f"{what}: {did[:48]}… is not a registered inference node")
    return rec


class _Penalties:
    """Node records touched by one tx, the slash records it adds, and the events: written only at the end."""

    def __init__(self, view: Reader, ctx: BlockContext) -> None:
        self.view, self.ctx = view, ctx
        self.nodes: dict[str, NodeRecord] = {}
        self.slashes: list[SlashRecord] = []
        self.par = params(view)

    def node(self, did: str) -> NodeRecord:
        if did not in self.nodes:
            rec = find_node_by_did(self.view, did)
            if rec is None:
                raise RuntimeError(f"state invariant violated: node {did} vanished during a tx")
            self.nodes[did] = rec
        return self.nodes[did]

    def slash(self, did: str, reason: str, penalty: int, batch: int | None, request: str | None,
              evidence: list[str]) -> None:
        rec = self.node(did)
        suspend = False
        if reason == "fraud":
            suspend = True
        else:
            window = self.par["dissent_window"]
            recent = [h for h in rec["recent_dissents"] if h > self.ctx.height - window] + [self.ctx.height]
            rec["recent_dissents"] = recent
            rec["dissented"] += 1
            suspend = len(recent) >= self.par["max_dissents"]
        suspend = suspend and rec["status"] == "active"
        if suspend:
            rec["status"] = "suspended"
            rec["suspended_height"] = self.ctx.height
            rec["suspended_reason"] = ("equivocation proven by a fraud proof" if reason == "fraud" else
                                       f"outvoted {len(rec['recent_dissents'])} times within "
                                       f"{self.par['dissent_window']} blocks")
        self.slashes.append({"seq": 0, "node": did, "reason": "fraud" if reason == "fraud" else "dissent",
                             "height": self.ctx.height, "penalty": penalty, "batch": batch, "request": request,
                             "evidence": evidence, "suspended": suspend})

    def write(self, state: Writer, signer: str) -> list[Event]:
        events: list[Event] = []
        m = meta(state)
        for slash in self.slashes:
            m["slashes"] += 1
            slash["seq"] = m["slashes"]
            store_record(state, keys.slash_key(slash["seq"]), dict(slash))
            reason = "inference_fraud" if slash["reason"] == "fraud" else "inference_dissent"
            events += on_inference_penalty(state, slash["node"], self.ctx.height, reason, slash["penalty"])
            events.append(fl_event("slash_inference_node", signer, node=slash["node"], reason=slash["reason"],
                                   seq=slash["seq"], suspended=str(slash["suspended"]).lower()))
        for did in sorted(self.nodes):
            store_node(state, self.nodes[did])
        store_meta(state, m)
        return events


def report_receipts(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                    msg: ReportReceipts) -> list[Event]:
    """Tally a batch: the majority of each request agreed, dissenters are penalized (and maybe suspended)."""
    reporter = require_member(view, signer, ctx, None, "report inference receipts")
    load_task(view, msg.task_id)
    pol = policy(view, msg.task_id)
    if pol["tier"] != "general":
        raise TxError(Code.INFERENCE_TIER, f"task {msg.task_id!r} requires the {pol['tier']} tier (proofs or "
                                           "encrypted inference); general-tier receipts are refused")
    m = meta(view)
    seq = m["batches"] + 1
    pen = _Penalties(view, ctx)
    seen: set[str] = set()
    leaves: list[bytes] = []
    entries: list[BatchRequest] = []
    for i, receipts in enumerate(msg.requests):
        first = receipts[0]
        if find_version(view, msg.task_id, first.version) is None:
            raise TxError(Code.NOT_FOUND, f"request {i}: task {msg.task_id!r} has no version {first.version}")
        excluded: list[str] = []
        for r in receipts:
            node = _registered_node(view, r.node, f"request {i}")
            if msg.task_id not in node["tasks"]:
                raise TxError(Code.INFERENCE_NODE, f"request {i}: node {r.node[:48]}… is not registered for "
                                                   f"task {msg.task_id!r}")
            if node["status"] != "active":
                # Suspended after the client asked it (the report lags the chain): its answer is not counted,
                # and the others' receipts still are, so a report is never lost for one suspended node.
                excluded.append(r.node)
            if r.height > ctx.height:
                raise TxError(Code.INVALID_BODY, f"request {i}: a receipt claims height {r.height}, above the "
                                                 f"block being built ({ctx.height})")
        rid = request_hash(receipts)
        if rid in seen or view.get(keys.request_key(rid)) is not None:
            raise TxError(Code.INFERENCE_REPLAY, f"request {i} ({first.request_id!r}) was already reported")
        seen.add(rid)
        ordered = sorted(receipts, key=lambda r: r.node.encode("ascii"))
        leaves += [bytes.fromhex(r.hash) for r in ordered]
        result = tally([r for r in receipts if r.node not in excluded])
        for did in result.majority:
            pen.node(did)["agreed"] += 1
        for did in result.dissenters:
            pen.slash(did, "dissent", pen.par["dissent_penalty"], seq, rid,
                      [r.hash for r in ordered if r.node == did])
        entries.append({"request": rid, "request_id": first.request_id, "version": first.version,
                        "segment": first.segment, "input_hash": first.input_hash, "outcome": result.outcome,
                        "majority": list(result.majority), "dissenters": list(result.dissenters),
                        "nodes": [r.node for r in ordered], "excluded": sorted(excluded)})
    root = MerkleTree(leaves).root.hex()
    events = [fl_event("report_receipts", signer, task=msg.task_id, batch=seq, requests=len(entries),
                       dissents=sum(len(e["dissenters"]) for e in entries), root=root)]
    if state is not None:
        for index, entry in enumerate(entries):
            store_record(state, keys.request_key(entry["request"]), {"batch": seq, "index": index})
        store_record(state, keys.batch_key(seq), {
            "seq": seq, "task_id": msg.task_id, "reporter": reporter["did"], "height": ctx.height, "root": root,
            "receipts": len(leaves), "cid": msg.cid, "requests": [dict(e) for e in entries]})
        m["batches"] = seq
        store_meta(state, m)
        events += pen.write(state, signer)
    return events


def report_fraud(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                 msg: ReportFraud) -> list[Event]:
    """Anyone admitted may prove a node signed two disagreeing answers to one input: it is slashed and suspended."""
    require_member(view, signer, ctx, None, "report inference fraud")
    if agree(msg.a, msg.b):
        raise TxError(Code.INFERENCE_NO_FRAUD, "the two receipts' outputs agree (within the tolerance): "
                                               "that is no equivocation")
    node = find_node_by_did(view, msg.a.node)
    if node is None:
        raise TxError(Code.INFERENCE_NODE, f"{msg.a.node[:48]}… is not a registered inference node")
    hashes = sorted((msg.a.hash, msg.b.hash))
    evidence = hashlib.sha256(bytes.fromhex(hashes[0]) + bytes.fromhex(hashes[1])).hexdigest()
    if view.get(keys.fraud_key(evidence)) is not None:
        raise TxError(Code.INFERENCE_REPLAY, "this fraud proof was already reported")
    pen = _Penalties(view, ctx)
    pen.slash(node["did"], "fraud", pen.par["fraud_penalty"], None, None, hashes)
    events = [fl_event("report_fraud", signer, node=node["did"], task=msg.a.task_id, version=msg.a.version)]
    if state is not None:
        events += pen.write(state, signer)
        store_record(state, keys.fraud_key(evidence), {"slash": meta(state)["slashes"]})
    return events


HANDLERS: dict[str, Handler] = {
    "register_inference_node": register_node,
    "set_inference_policy": set_policy,
    "report_receipts": report_receipts,
    "report_fraud": report_fraud,
}

