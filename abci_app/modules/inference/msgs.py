"""The inference module's tx bodies and their stateless validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.attestation.keeper import parse_tee_requirement
from fedledger.abci_app.modules.attestation.records import TeeRequirement
from fedledger.abci_app.modules.fields import ID_RE, int_field, require_fields, str_field
from fedledger.abci_app.modules.inference.receipts import Receipt, parse_receipt

__all__ = ["GUARANTEES", "MAX_K", "MAX_REQUESTS", "PARSERS", "TIERS", "RegisterNode", "ReportFraud", "ReportReceipts",
           "SetInferencePolicy"]

TIERS = ("general", "critical")
# What a critical-tier answer may carry: a zk proof the chain verified (ezkl), or evaluation over CKKS ciphertexts.
GUARANTEES = ("ckks", "zk")
MAX_K = 9  # most nodes one request may be sent to
MAX_REQUESTS = 256  # most requests one report may carry (keeps a report tx well under CometBFT's 1 MiB)
# An http(s) base URL without credentials, query or fragment; the node's OIP v2 API lives under it.
_ENDPOINT = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]{1,200}(/[A-Za-z0-9._~/-]{0,200})?$")
_CID = re.compile(r"^[A-Za-z0-9]{10,120}$")


MAX_NODE_TASKS = 16  # most tasks one node registration may serve


@dataclass(frozen=True)
class RegisterNode:
    """An admitted `inference` member announces (or moves) the endpoint it serves from, and the tasks it serves."""

    endpoint: str
    tasks: tuple[str, ...]

    @staticmethod
    def parse(body: dict[str, Any]) -> RegisterNode:
        """Validate a register_inference_node body; tasks sorted and unique."""
        require_fields(body, ("endpoint", "tasks"))
        tasks = body["tasks"]
        if (not isinstance(tasks, list) or not 1 <= len(tasks) <= MAX_NODE_TASKS
                or not all(isinstance(t, str) and ID_RE.match(t) for t in tasks)):
            raise TxError(Code.INVALID_BODY, f"tasks must be a list of 1-{MAX_NODE_TASKS} task ids")
        if tasks != sorted(set(tasks)):
            raise TxError(Code.INVALID_BODY, "tasks must be sorted and without duplicates")
        return RegisterNode(endpoint=str_field(body, "endpoint", _ENDPOINT, "an http(s) base URL such as "
                                               "http://127.0.0.1:8100, without credentials or query").rstrip("/"),
                            tasks=tuple(tasks))


@dataclass(frozen=True)
class SetInferencePolicy:
    """A task owner sets which tier the task's inference requires and how many nodes answer each request."""

    task_id: str
    tier: str
    k: int
    # critical only: the guarantees an answer may carry, any one of which satisfies the task (sorted, non-empty)
    guarantees: tuple[str, ...] = ()
    # nodes serving the task must hold a valid SEV-SNP attestation meeting this (None: no TEE needed)
    require_tee: TeeRequirement | None = None

    @staticmethod
    def parse(body: dict[str, Any]) -> SetInferencePolicy:
        """Validate a set_inference_policy body."""
        require_fields(body, ("task_id", "tier", "k"), ("guarantees", "require_tee"))
        if body["tier"] not in TIERS:
            raise TxError(Code.INVALID_BODY, f"tier must be one of {list(TIERS)}, got {str(body['tier'])[:40]!r}")
        guarantees = body.get("guarantees", [])
        if (not isinstance(guarantees, list) or not all(isinstance(g, str) and g in GUARANTEES for g in guarantees)
                or guarantees != sorted(set(guarantees))):
            raise TxError(Code.INVALID_BODY, f"guarantees must be a sorted list of distinct values from "
                                             f"{list(GUARANTEES)}")
        if body["tier"] == "critical" and not guarantees:
            raise TxError(Code.INVALID_BODY, f"a critical tier names the guarantees its answers need, from "
                                             f"{list(GUARANTEES)}")
        if body["tier"] == "general" and guarantees:
            raise TxError(Code.INVALID_BODY, "guarantees belong to the critical tier; a general task has none")
        return SetInferencePolicy(task_id=str_field(body, "task_id", ID_RE, "a task id"), tier=body["tier"],
                                  k=int_field(body, "k", 1, MAX_K), guarantees=tuple(guarantees),
                                  require_tee=parse_tee_requirement(body["require_tee"]) if "require_tee" in body
                                  else None)


@dataclass(frozen=True)
class ReportReceipts:
    """A batch of requests, each with the signed receipts of every node that answered it."""

    task_id: str
    requests: tuple[tuple[Receipt, ...], ...]
    cid: str | None  # where the reporter put the full receipts and outputs, if it did

    @staticmethod
    def parse(body: dict[str, Any]) -> ReportReceipts:
        """Validate shape and every receipt's signature; the receipts of a request must describe one request."""
        require_fields(body, ("task_id", "requests"), ("cid",))
        task_id = str_field(body, "task_id", ID_RE, "a task id")
        cid = body.get("cid")
        if cid is not None and (not isinstance(cid, str) or not _CID.match(cid)):
            raise TxError(Code.INVALID_BODY, "cid must be a content identifier (base32/base58 text)")
        raw = body["requests"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_REQUESTS:
            raise TxError(Code.INVALID_BODY, f"requests must be a list of 1-{MAX_REQUESTS} requests")
        requests: list[tuple[Receipt, ...]] = []
        for i, item in enumerate(raw):
            if not isinstance(item, list) or not 1 <= len(item) <= MAX_K:
                raise TxError(Code.INVALID_BODY, f"request {i}: a list of 1-{MAX_K} receipts, one per node")
            receipts = tuple(parse_receipt(r) for r in item)
            first = receipts[0]
            for r in receipts:
                if r.task_id != task_id:
                    raise TxError(Code.INVALID_BODY, f"request {i}: a receipt is for task {r.task_id!r}, "
                                                     f"the report for {task_id!r}")
                if (r.version, r.segment, r.request_id, r.input_hash) != (
                        first.version, first.segment, first.request_id, first.input_hash):
                    raise TxError(Code.INVALID_BODY, f"request {i}: receipts must share version, segment, "
                                                     "request_id and input_hash")
            nodes = [r.node for r in receipts]
            if len(set(nodes)) != len(nodes):
                raise TxError(Code.INVALID_BODY, f"request {i}: one node answered twice")
            requests.append(receipts)
        return ReportReceipts(task_id=task_id, requests=tuple(requests), cid=cid)


@dataclass(frozen=True)
class ReportFraud:
    """Two receipts one node signed for the same input of the same version and segment, with disagreeing outputs."""

    a: Receipt
    b: Receipt

    @staticmethod
    def parse(body: dict[str, Any]) -> ReportFraud:
        """Validate both receipts (signatures included) and that together they prove an equivocation."""
        require_fields(body, ("a", "b"))
        a, b = parse_receipt(body["a"]), parse_receipt(body["b"])
        if a.node != b.node:
            raise TxError(Code.INVALID_BODY, "a fraud proof is two receipts of the same node")
        if (a.task_id, a.version, a.segment, a.input_hash) != (b.task_id, b.version, b.segment, b.input_hash):
            raise TxError(Code.INVALID_BODY, "a fraud proof is two receipts for the same task, version, segment "
                                             "and input")
        return ReportFraud(a=a, b=b)


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "register_inference_node": RegisterNode.parse,
    "set_inference_policy": SetInferencePolicy.parse,
    "report_receipts": ReportReceipts.parse,
    "report_fraud": ReportFraud.parse,
}

