"""Split inference: the client runs the head of the version's graph itself; nodes run the later parts as a pipeline.

The version's ONNX artifact (fetched from the content store and checked against the chain) is cut
with sdk/inference/split.default_cuts into `parts` pieces, the same cut on every machine. The
client runs part 1 locally, so the raw input never leaves it. Each later part goes to `k` nodes
drawn from the block hash and the stage number (so each stage's draw is verifiable and no node
chooses its stage); they answer with receipts for segment "i/parts", each naming the previous
hop's majority receipt in `prev`, so the hops form a signed chain from the first node stage to
the output. A stage's majority output (checked like a CBV answer) is what the next stage gets.

What it protects: no node sees the raw input, only the activations after the head. What it does
not: those activations still carry information about the input (docs/INFERENCE.md measures how
well a decoder trained on public data reconstructs digits from them), the last stage sees the
output, and a node serving several stages of one request sees them all.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from fedledger.abci_app.errors import ChainRejectedError, VerificationError
from fedledger.abci_app.modules.inference.receipts import Receipt, parse_receipt
from fedledger.abci_app.modules.inference.records import NodeRecord
from fedledger.abci_app.modules.inference.tally import Tally
from fedledger.client.infer import (
    NodeAnswer,
    NoNodesError,
    ReceiptSink,
    TierError,
    decide,
    gather,
    post_json,
    select_nodes,
)
from fedledger.client.oip_transport import OIPTransport
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.inference.canonical import canonical_output, input_hash
from fedledger.sdk.inference.oip_json import decode_outputs, encode_request
from fedledger.sdk.inference.split import default_cuts, split_model, stage_model_name

__all__ = ["ArtifactError", "Hop", "SplitAnswer", "SplitInference"]


class ArtifactError(VerificationError):
    """The version's artifact is missing, or the store's bytes are not the ones the chain records."""

    error_code = "SPLIT_ARTIFACT"


@dataclass(frozen=True)
class Hop:
    """One node stage of one request: who was asked, the tally, the receipts and what the stage was sent."""

    segment: str
    nodes: tuple[str, ...]
    tally: Tally
    receipts: tuple[Receipt, ...]
    failed: tuple[tuple[str, str | None], ...]
    sent_shape: tuple[int, ...]  # what this stage saw: the activation's shape


@dataclass(frozen=True)
class SplitAnswer:
    """The pipeline's output and every hop, chained by `prev`."""

    task_id: str
    version: int
    request_id: str
    outputs: dict[str, npt.NDArray[Any]]
    hops: tuple[Hop, ...]
    head_output: str  # the tensor the client's head produced and the first node stage received


class SplitInference:
    """Split inference for one task's last good version (see the module docstring)."""

    def __init__(self, view: ChainView, status: Any, store: Any, task_id: str, *, parts: int = 3, k: int = 1,
                 transport: OIPTransport | None = None, sink: ReceiptSink | None = None,
                 timeout: float = 10.0) -> None:
        if not 2 <= parts <= 8:
            raise ValueError(f"a split has 2-8 parts (the client's head and 1-7 node stages), got {parts}")
        policy = view.get(f"/inference-policy/{task_id}")
        if policy["tier"] != "general":
            raise TierError(f"task {task_id!r} requires the {policy['tier']} inference tier; split inference "
                            "is general tier")
        self.view, self.task_id, self.parts, self.k, self.sink = view, task_id, parts, k, sink
        self.http = transport or OIPTransport(timeout)
        info = status()["sync_info"]
        self.height, self.seed = int(info["latest_block_height"]), bytes.fromhex(str(info["latest_block_hash"]))
        self.version = view.last_good(task_id)
        rec = view.version(task_id, self.version) if self.version > 0 else None
        artifact = rec.get("artifact") if rec is not None else None
        if artifact is None:
            raise ArtifactError(f"version {self.version} of {task_id!r} has no ONNX artifact to split")
        data = store.get(artifact["cid"], artifact["sha256"])
        if hashlib.sha256(data).hexdigest() != artifact["sha256"]:
            raise ArtifactError(f"the store's artifact of version {self.version} is not the one on chain")
        cuts = default_cuts(data, parts)
        self.cuts = tuple(cuts)
        head = split_model(data, cuts)[0]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self._head = ort.InferenceSession(head, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self._head.get_inputs()]
        nodes: list[NodeRecord] = [n for n in view.get("/inference-nodes")["nodes"] if task_id in n["tasks"]]
        scores = {n["did"]: int(view.get(f"/reputation/{n['did']}")["score"]) for n in nodes}
        # Each stage draws its own nodes from the block hash and the stage number.
        # (the whole draw order per stage: the first k are asked, the rest stand in for failures)
        self.stages = {i: select_nodes(nodes, scores, hashlib.sha256(self.seed + bytes([i])).digest(), len(nodes))
                       for i in range(2, parts + 1)}
        self._pool = ThreadPoolExecutor(max_workers=max(k, 1) * 2, thread_name_prefix="split")
        if not all(self.stages.values()):
            raise NoNodesError(f"no active inference nodes for task {task_id!r}")

    def close(self) -> None:
        """Stop the fan-out threads and close the HTTP client."""
        self._pool.shutdown(wait=False)
        self.http.close()

    def _ask(self, node: NodeRecord, index: int, arrays: Mapping[str, npt.NDArray[Any]], rid: str,
             prev: str) -> NodeAnswer:
        name = stage_model_name(self.task_id, index, self.parts)
        did, endpoint = node["did"], node["endpoint"]
        body = encode_request(arrays, request_id=rid, parameters={"fedledger_prev": prev})
        _, payload, why = post_json(self.http, endpoint, f"/v2/models/{name}/versions/{self.version}/infer", body)
        if why is not None:
            return NodeAnswer(did, endpoint, None, None, why)
        try:
            outputs = decode_outputs(payload)
            receipt = parse_receipt((payload.get("parameters") or {}).get("fedledger_receipt"))
        except (ValueError, KeyError, TypeError, ChainRejectedError) as exc:
            return NodeAnswer(did, endpoint, None, None, f"malformed answer: {exc}")
        expect = (did, self.task_id, self.version, f"{index}/{self.parts}", rid, input_hash(arrays), prev)
        got = (receipt.node, receipt.task_id, receipt.version, receipt.segment, receipt.request_id,
               receipt.input_hash, receipt.prev)
        if got != expect or canonical_output(outputs).output_hash != receipt.output_hash:
            return NodeAnswer(did, endpoint, None, None,
                              "the receipt does not match the request sent or the outputs returned")
        return NodeAnswer(did, endpoint, outputs, receipt, None)

    def infer(self, inputs: Mapping[str, npt.NDArray[Any]], request_id: str | None = None) -> SplitAnswer:
        """Run the head here, then each node stage in turn; raises NoConsensusError when a stage has no majority."""
        rid = request_id or secrets.token_hex(12)
        feeds = {name: np.ascontiguousarray(inputs[name]) for name in self.input_names}
        head_name = self._head.get_outputs()[0].name
        arrays: dict[str, npt.NDArray[Any]] = {head_name: np.asarray(self._head.run([head_name], feeds)[0])}
        hops: list[Hop] = []
        prev = ""
        for index in range(2, self.parts + 1):
            answers = gather(self._pool, self.stages[index], self.k, partial(self._ask, index=index, arrays=arrays,
                                                                              rid=rid, prev=prev))
            result, winner = decide(answers, self.k, f"stage {index}/{self.parts} of request {rid}")
            receipts = tuple(a.receipt for a in answers if a.receipt is not None)
            hops.append(Hop(f"{index}/{self.parts}", tuple(a.did for a in answers), result, receipts,
                            tuple((a.did, a.error) for a in answers if a.error is not None),
                            tuple(next(iter(arrays.values())).shape)))
            assert winner.outputs is not None and winner.receipt is not None
            if self.sink is not None:
                self.sink.add(receipts, winner.outputs)
            arrays = dict(winner.outputs)
            prev = winner.receipt.hash
        return SplitAnswer(self.task_id, self.version, rid, arrays, tuple(hops), head_name)
