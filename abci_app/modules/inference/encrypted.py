"""report_encrypted_inference: the chain's record that a critical request was answered over CKKS, stage by stage.

The client relays its ciphertext through two or more nodes, each holding one stage of the model,
and reports the nodes' signed stage receipts. The chain cannot check the arithmetic (that is the
ciphertexts' secret), so it checks everything it can see: every receipt's signature; that each
signer is a registered, active inference node serving the task; that the stages run 0..n-1 and
chain (stage i's output ciphertext is stage i+1's input) under one request and one evaluation
context; that no node held two stages (so none held the whole model); that the version is
promoted; and that the task's policy accepts the `ckks` guarantee. The record says which guarantee
the request got, and which nodes gave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.federation.keeper import find_version, load_task
from fedledger.abci_app.modules.fields import ID_RE, require_fields, str_field
from fedledger.abci_app.modules.identity.keeper import require_member
from fedledger.abci_app.modules.inference import keys
from fedledger.abci_app.modules.inference.he_receipts import (
    REQUEST_ID,
    HEReceipt,
    parse_he_receipt,
)
from fedledger.abci_app.modules.inference.keeper import find_node_by_did, policy
from fedledger.abci_app.modules.inference.records import EncryptedRecord
from fedledger.abci_app.records import load_record, store_record

__all__ = ["MAX_STAGES", "ReportEncrypted", "encrypted_record", "report_encrypted"]

MAX_STAGES = 8


@dataclass(frozen=True)
class ReportEncrypted:
    """One encrypted request's stage receipts, stage 0 first."""

    task_id: str
    request_id: str
    receipts: tuple[HEReceipt, ...]

    @staticmethod
    def parse(body: dict[str, Any]) -> ReportEncrypted:
        """Validate the shape, every receipt's signature, and that the receipts chain into one request."""
        require_fields(body, ("task_id", "request_id", "receipts"))
        task_id = str_field(body, "task_id", ID_RE, "a task id")
        request_id = str_field(body, "request_id", REQUEST_ID, "32 lower-case hex characters")
        raw = body["receipts"]
        if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_STAGES:
            raise TxError(Code.INVALID_BODY, f"receipts must be a list of 2-{MAX_STAGES} stage receipts: sequential "
                                             "HE splits the model over two or more nodes")
        receipts: list[HEReceipt] = []
        for i, item in enumerate(raw):
            try:
                receipts.append(parse_he_receipt(item))
            except TxError as exc:
                raise TxError(exc.code, f"stage receipt {i}: {exc.log}") from None
        first = receipts[0]
        for i, r in enumerate(receipts):
            if r.stage != i:
                raise TxError(Code.INFERENCE_RECEIPT, f"receipt {i} is for stage {r.stage}: stages run 0..n-1 in order")
            if (r.request_id, r.model, r.version, r.eval_context_sha256) != (
                    request_id, task_id, first.version, first.eval_context_sha256):
                raise TxError(Code.INFERENCE_RECEIPT, f"stage {i}: every receipt must name this request, task "
                                                      f"{task_id!r}, one version and one evaluation context")
            if i and receipts[i - 1].output_sha256 != r.input_sha256:
                raise TxError(Code.INFERENCE_RECEIPT, f"stage {i}'s input ciphertext is not stage {i - 1}'s output: "
                                                      "the receipts do not chain")
        nodes = [r.node for r in receipts]
        if len(set(nodes)) != len(nodes):
            raise TxError(Code.INFERENCE_RECEIPT, "one node served two stages, so it held more of the model than "
                                                  "sequential HE allows")
        return ReportEncrypted(task_id=task_id, request_id=request_id, receipts=tuple(receipts))


def encrypted_record(view: Reader, request_id: str) -> EncryptedRecord | None:
    """The encrypted-inference record of a request id, if one was reported."""
    rec = load_record(view, keys.encrypted_key(request_id))
    return rec  # type: ignore[return-value]


def report_encrypted(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                     msg: ReportEncrypted) -> list[Event]:
    """Record that a critical request got the ckks guarantee from these nodes."""
    reporter = require_member(view, signer, ctx, None, "report an encrypted inference")
    load_task(view, msg.task_id)
    pol = policy(view, msg.task_id)
    if pol["tier"] != "critical" or "ckks" not in pol.get("guarantees", []):
        raise TxError(Code.INFERENCE_TIER, f"task {msg.task_id!r}'s inference policy does not accept the ckks "
                                           f"guarantee (tier {pol['tier']}, guarantees {pol.get('guarantees', [])})")
    version = msg.receipts[0].version
    ver = find_version(view, msg.task_id, version)
    if ver is None:
        raise TxError(Code.NOT_FOUND, f"task {msg.task_id!r} has no version {version}")
    if ver["status"] != "promoted":
        raise TxError(Code.WRONG_STATE, f"version {version} of {msg.task_id!r} is {ver['status']}, not promoted: "
                                        "no node may answer for it")
    for r in msg.receipts:
        node = find_node_by_did(view, r.node)
        if node is None:
            raise TxError(Code.INFERENCE_NODE, f"stage {r.stage}: {r.node[:48]}… is not a registered inference node")
        if node["status"] != "active":
            raise TxError(Code.INFERENCE_NODE, f"stage {r.stage}: node {r.node[:48]}… is {node['status']}")
        if msg.task_id not in node["tasks"]:
            raise TxError(Code.INFERENCE_NODE, f"stage {r.stage}: node {r.node[:48]}… does not serve "
                                               f"{msg.task_id!r}")
    if view.get(keys.encrypted_key(msg.request_id)) is not None:
        raise TxError(Code.INFERENCE_REPLAY, f"encrypted request {msg.request_id} was already reported")
    if state is not None:
        rec: EncryptedRecord = {
            "request_id": msg.request_id, "task_id": msg.task_id, "version": version, "guarantee": "ckks",
            "stages": len(msg.receipts), "nodes": [r.node for r in msg.receipts],
            "eval_context_sha256": msg.receipts[0].eval_context_sha256,
            "input_sha256": msg.receipts[0].input_sha256, "output_sha256": msg.receipts[-1].output_sha256,
            "receipts": [r.hash() for r in msg.receipts], "reporter": reporter["did"], "height": ctx.height}
        store_record(state, keys.encrypted_key(msg.request_id), dict(rec))
    return [fl_event("report_encrypted_inference", signer, task=msg.task_id, version=version,
                     request_id=msg.request_id, guarantee="ckks", stages=len(msg.receipts))]
