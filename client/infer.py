"""Consensus-verified inference: ask k chain-selected nodes the same question, check their receipts, take the majority.

The flow of one request:
1. Read the task's inference policy (its tier and k) and its last good version from the chain.
   A critical-tier task refuses here: general-tier answers are not enough for it.
2. Select k of the active inference nodes with the reputation module's verifiable draw, seeded by
   the latest block hash: the same rule, seed and candidate list give anyone the same nodes, and
   no node can make itself picked.
3. Send every selected node the same OIP v2 request, pinned to that version, in parallel.
4. Check each answer: a signed receipt for this task, version, request id and input hash, by the
   node that was asked, whose output hash is the hash of the outputs it returned. A node that
   fails any check, or does not answer, counts as failed.
5. Tally the valid receipts with the chain's own rule (abci_app/modules/inference/tally.py) and
   return the majority's outputs, the dissenters and the failures. Receipts go to a reporter that
   posts them to the chain in batches on its own thread, so posting never delays the answer.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import ChainRejectedError, UnavailableError, VerificationError
from fedledger.abci_app.modules.inference.receipts import Receipt, parse_receipt, request_hash
from fedledger.abci_app.modules.inference.records import NodeRecord, PolicyRecord
from fedledger.abci_app.modules.inference.tally import Tally, tally
from fedledger.abci_app.modules.reputation.selection import select
from fedledger.client.oip_transport import OIPTransport, TransportError
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.inference.canonical import canonical_output, input_hash
from fedledger.sdk.inference.oip_json import decode_outputs, encode_request

__all__ = ["NoConsensusError", "NoNodesError", "NodeAnswer", "ReceiptSink", "TierError", "VerifiedAnswer",
           "VerifiedInference", "decide", "gather", "post_json", "select_nodes"]


class TierError(ChainRejectedError):
    """The task's inference policy requires a tier this client cannot give (critical needs proofs or HE)."""

    error_code = "INFERENCE_TIER"


class NoConsensusError(VerificationError):
    """The selected nodes gave no strict majority of valid, agreeing answers."""

    error_code = "NO_CONSENSUS"


class NoNodesError(UnavailableError):
    """No active inference node is registered for the task (or none answered)."""

    error_code = "NO_INFERENCE_NODES"


class ReceiptSink(Protocol):
    """Where verified receipts go (the batching reporter); must not block."""

    def add(self, receipts: Sequence[Receipt], outputs: Mapping[str, npt.NDArray[Any]]) -> None:
        """Take one request's receipts and its majority outputs."""


@dataclass(frozen=True)
class NodeAnswer:
    """What one selected node gave: its outputs and receipt, or why it does not count."""

    did: str
    endpoint: str
    outputs: dict[str, npt.NDArray[Any]] | None
    receipt: Receipt | None
    error: str | None
    stale: bool = False


@dataclass(frozen=True)
class VerifiedAnswer:
    """The majority's answer to one request, and who agreed, who dissented and who failed."""

    task_id: str
    version: int
    request_id: str
    outputs: dict[str, npt.NDArray[Any]]
    tally: Tally
    answers: tuple[NodeAnswer, ...]
    selection_height: int
    receipts: tuple[Receipt, ...] = field(default=())

    @property
    def request_hash(self) -> str:
        """The request's identity on chain (what `fedledger query inference request` takes)."""
        return request_hash(self.receipts)

    @property
    def dissenters(self) -> tuple[str, ...]:
        """DIDs of the nodes the majority outvoted."""
        return self.tally.dissenters

    @property
    def failed(self) -> tuple[tuple[str, str], ...]:
        """(DID, why) of the selected nodes whose answers did not count."""
        return tuple((a.did, a.error or "") for a in self.answers if a.error is not None)


def post_json(http: OIPTransport, endpoint: str, path: str, body: bytes) -> tuple[int, dict[str, Any], str | None]:
    """POST an OIP request: (status, parsed JSON body, None), or (status, {}, why it gave no usable answer)."""
    try:
        status, raw = http.request(endpoint, "POST", path, body)
    except TransportError as exc:
        return 0, {}, f"no answer ({exc})"
    try:
        payload = json.loads(raw)
    except ValueError:
        return status, {}, f"HTTP {status} with a non-JSON body"
    if not isinstance(payload, dict):
        return status, {}, f"HTTP {status} with a JSON body that is not an object"
    if status != 200:
        return status, payload, f"HTTP {status}: {str(payload.get('error'))[:200]}"
    return status, payload, None


def gather(pool: ThreadPoolExecutor, ranking: Sequence[NodeRecord], k: int,
           ask: Callable[[NodeRecord], NodeAnswer]) -> list[NodeAnswer]:
    """Ask the draw's first k nodes in parallel; for each that fails, the next ones, until k answered or none is left.

    Falling back in draw order keeps the choice verifiable (a node cannot get picked by making
    others fail, only by being next in the draw anyone can recompute) and keeps a dead node from
    costing the request its quorum.
    """
    answers: list[NodeAnswer] = []
    nxt = 0
    while nxt < len(ranking):
        missing = k - sum(1 for a in answers if a.receipt is not None)
        if missing <= 0:
            break
        wave = ranking[nxt:nxt + missing]
        nxt += len(wave)
        answers += list(pool.map(ask, wave))
    return answers


def decide(answers: Sequence[NodeAnswer], k: int, what: str) -> tuple[Tally, NodeAnswer]:
    """The tally of the valid answers and a majority answer; the majority must be over half of k, not of the valid."""
    valid = [a for a in answers if a.receipt is not None]
    if not valid:
        reasons = "; ".join(f"{a.did[-8:]}: {a.error}" for a in answers)
        raise NoNodesError(f"{what}: none of the {len(answers)} nodes asked gave a valid answer ({reasons})")
    result = tally([a.receipt for a in valid if a.receipt is not None])
    if not result.decided or 2 * len(result.majority) <= k:
        raise NoConsensusError(f"{what}: {len(valid)} valid answers of the {k} needed, and no more than half of k "
                               f"agree ({len(result.majority)}); nobody can tell which is right")
    winner = min((a for a in valid if a.did in result.majority), key=lambda a: a.did.encode("ascii"))
    return result, winner


def select_nodes(nodes: Sequence[NodeRecord], scores: Mapping[str, int], seed: bytes, k: int) -> list[NodeRecord]:
    """The k active nodes drawn from `seed`, weighted by reputation (reputation/selection.py's rule), in draw order."""
    active = [n for n in nodes if n["status"] == "active"]
    drawn = select([(n["did"], max(0, int(scores.get(n["did"], 0))), True) for n in active], seed, k)
    by_did = {n["did"]: n for n in active}
    return [by_did[d] for d in drawn]


class VerifiedInference:
    """The client of general-tier inference for one task (see the module docstring)."""

    def __init__(self, view: ChainView, status: Any, task_id: str, *, k: int | None = None,
                 transport: OIPTransport | None = None, sink: ReceiptSink | None = None,
                 timeout: float = 10.0) -> None:
        self.view, self.task_id, self.sink = view, task_id, sink
        self._status = status  # a callable giving CometBFT /status (for the latest height and block hash)
        self.http = transport or OIPTransport(timeout)
        self.policy: PolicyRecord = view.get(f"/inference-policy/{task_id}")
        if self.policy["tier"] != "general":
            raise TierError(f"task {task_id!r} requires the {self.policy['tier']} inference tier (zero-knowledge "
                            "proofs or homomorphic encryption); general-tier consensus answers are refused")
        self.k = k or int(self.policy["k"])
        self._pool = ThreadPoolExecutor(max_workers=max(self.k, 1) * 4, thread_name_prefix="cbv")
        self.refresh()

    def refresh(self) -> None:
        """Re-read the served version, the nodes and their scores, and re-draw the selection at the latest block."""
        info = self._status()["sync_info"]
        self.height = int(info["latest_block_height"])
        seed = bytes.fromhex(str(info["latest_block_hash"]))
        self.version = self.view.last_good(self.task_id)
        nodes = [n for n in self.view.get("/inference-nodes")["nodes"] if self.task_id in n["tasks"]]
        scores = {n["did"]: int(self.view.get(f"/reputation/{n['did']}")["score"]) for n in nodes}
        # The whole draw order: the first k are asked, the rest stand in, in order, for nodes that fail.
        self.ranking = select_nodes(nodes, scores, seed, len(nodes))
        self.selected = self.ranking[:self.k]
        if not self.selected:
            raise NoNodesError(f"no active inference node is registered on this chain for task {self.task_id!r}; "
                               "start one with `fedledger inference serve`")

    def metadata(self) -> dict[str, Any]:
        """The served model's OIP metadata (inputs, outputs), from the first selected node that answers."""
        for node in self.selected:
            try:
                status, raw = self.http.request(node["endpoint"], "GET", f"/v2/models/{self.task_id}")
                if status == 200:
                    meta: dict[str, Any] = json.loads(raw)
                    return meta
            except (TransportError, ValueError):
                continue
        raise NoNodesError(f"none of the selected nodes answered a metadata request for {self.task_id!r}")

    def input_name(self) -> str:
        """The model's only input's name; a model with several inputs needs them named."""
        inputs = self.metadata()["inputs"]
        if len(inputs) != 1:
            raise ValueError(f"the model has inputs {[i['name'] for i in inputs]}; name the one to feed")
        return str(inputs[0]["name"])

    def input_dtype(self, name: str) -> np.dtype[Any]:
        """The numpy dtype the model declares for input `name`."""
        from fedledger.sdk.inference.oip_json import dtype_of

        for item in self.metadata()["inputs"]:
            if item["name"] == name:
                return dtype_of(item["datatype"])
        raise ValueError(f"the model has no input {name!r}")

    def close(self) -> None:
        """Stop the fan-out threads and the HTTP client."""
        self._pool.shutdown(wait=False)
        self.http.close()

    def _ask(self, node: NodeRecord, body: bytes, request_id: str, digest: str) -> NodeAnswer:
        did, endpoint = node["did"], node["endpoint"]
        status, payload, why = post_json(self.http, endpoint,
                                         f"/v2/models/{self.task_id}/versions/{self.version}/infer", body)
        if why is not None:
            return NodeAnswer(did, endpoint, None, None, why)
        try:
            outputs = decode_outputs(payload)
            params = payload.get("parameters") or {}
            receipt = parse_receipt(params.get("fedledger_receipt"))
        except (ValueError, KeyError, TypeError, ChainRejectedError) as exc:
            return NodeAnswer(did, endpoint, None, None, f"malformed answer: {exc}")
        why = self._check(receipt, did, request_id, digest, outputs)
        return NodeAnswer(did, endpoint, outputs if why is None else None, receipt if why is None else None, why,
                          stale=bool(params.get("fedledger_stale")))

    def _check(self, r: Receipt, did: str, request_id: str, digest: str,
               outputs: Mapping[str, npt.NDArray[Any]]) -> str | None:
        if r.node != did:
            return f"the receipt is signed by {r.node[:32]}…, not by the node asked"
        if (r.task_id, r.version, r.request_id, r.segment) != (self.task_id, self.version, request_id, "full"):
            return (f"the receipt is for {r.task_id}/v{r.version}/{r.request_id}/{r.segment}, "
                    f"asked {self.task_id}/v{self.version}/{request_id}/full")
        if r.input_hash != digest:
            return "the receipt's input hash is not the hash of the input sent"
        if canonical_output(outputs).output_hash != r.output_hash:
            return "the returned outputs are not the outputs the receipt signs"
        return None

    def infer(self, inputs: Mapping[str, npt.NDArray[Any]], request_id: str | None = None) -> VerifiedAnswer:
        """Ask the selected nodes in parallel and return the majority's answer (NoConsensusError without one)."""
        rid = request_id or secrets.token_hex(12)
        arrays = {name: np.ascontiguousarray(a) for name, a in inputs.items()}
        body = encode_request(arrays, request_id=rid)
        digest = input_hash(arrays)
        answers = gather(self._pool, self.ranking, self.k, lambda n: self._ask(n, body, rid, digest))
        result, winner = decide(answers, self.k, f"request {rid}")
        valid = [a for a in answers if a.receipt is not None]
        receipts = tuple(a.receipt for a in valid if a.receipt is not None)
        if self.sink is not None:
            self.sink.add(receipts, winner.outputs or {})
        assert winner.outputs is not None
        return VerifiedAnswer(task_id=self.task_id, version=self.version, request_id=rid, outputs=winner.outputs,
                              tally=result, answers=tuple(answers), selection_height=self.height, receipts=receipts)
