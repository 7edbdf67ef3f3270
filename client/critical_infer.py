"""Critical-tier encrypted inference against a chain: find the stage nodes, relay the ciphertext, report the receipts.

The flow of one request:
1. Read the task's inference policy: the tier must be critical and its guarantees must list
   `ckks` (EncryptedInference refuses otherwise, before any key is made).
2. Read the last good version and the task's model spec (how many stages it has, how many logits).
3. Ask every active node registered for the task which stages of which version it holds
   (GET /v2/he/health on its registered endpoint) and pick, for each stage, a node holding it;
   a node holding several stages is used for at most one, because the chain accepts no report
   where one node saw two stages.
4. Relay the ciphertext stage by stage (client/he_infer.py), decrypt, check every receipt.
5. With a submitter, post report_encrypted_inference and read the chain's record back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.client.he_infer import HEClient, HEInferenceResult, Hop
from fedledger.client.infer import NoNodesError, TierError
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.he.keys import ClientKeys
from fedledger.sdk.ml.spec import get_spec

__all__ = ["EncryptedAnswer", "EncryptedInference", "StageNode", "plan_hops"]


@dataclass(frozen=True)
class StageNode:
    """A registered node and what its HE health route says it holds."""

    did: str
    endpoint: str
    model: str | None
    version: int | None
    stages: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class EncryptedAnswer:
    """The decrypted logits, the verified receipts, the hops taken, and the chain record once reported."""

    task_id: str
    version: int
    request_id: str
    result: HEInferenceResult
    hops: tuple[Hop, ...]
    record: dict[str, Any] | None = None
    height: int | None = None

    @property
    def logits(self) -> npt.NDArray[np.float64]:
        """The decrypted logits."""
        return self.result.logits


def plan_hops(nodes: Sequence[StageNode], task_id: str, version: int, n_stages: int) -> list[Hop]:
    """One node per stage 0..n_stages-1, each node used once; NoNodesError naming the first stage nobody holds.

    Nodes holding fewer stages are tried first, so a node that holds one stage is not displaced by
    one that could serve another stage too.
    """
    fitting = [n for n in nodes if n.model == task_id and n.version == version]
    used: set[str] = set()
    hops: list[Hop] = []
    for stage in range(n_stages):
        holders = sorted((n for n in fitting if stage in n.stages and n.did not in used),
                         key=lambda n: (len(n.stages), n.did))
        if not holders:
            raise NoNodesError(f"no registered node (not already used for another stage) holds stage {stage} of "
                               f"{task_id} version {version}; start one with `fedledger inference serve --task "
                               f"{task_id} --he-stages {stage}`")
        used.add(holders[0].did)
        hops.append(Hop(url=holders[0].endpoint, stage=stage, node_did=holders[0].did))
    return hops


class EncryptedInference:
    """The client of critical-tier CKKS inference for one task (see the module docstring)."""

    def __init__(self, view: ChainView, task_id: str, did_key: Ed25519PrivateKey, *,
                 keys: ClientKeys | None = None, timeout: float = 120.0) -> None:
        self.view, self.task_id = view, task_id
        policy = view.get(f"/inference-policy/{task_id}")
        guarantees = list(policy.get("guarantees") or [])
        if policy["tier"] != "critical" or "ckks" not in guarantees:
            raise TierError(f"task {task_id!r}'s inference policy (tier {policy['tier']}, guarantees "
                            f"{guarantees or 'none'}) does not accept CKKS answers; encrypted inference needs a "
                            "critical tier with the ckks guarantee")
        self.version = view.last_good(task_id)
        spec = get_spec(str(view.task(task_id)["model_spec"]))
        linears = [layer for layer in spec.layers() if layer.kind == "linear"]
        self.n_stages, self.num_outputs = len(linears), int(linears[-1].out_size)
        self.client = HEClient(did_key, keys, timeout=timeout)
        self._http = httpx.Client(timeout=10.0)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()
        self._http.close()

    def __enter__(self) -> EncryptedInference:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stage_nodes(self) -> list[StageNode]:
        """The active nodes registered for the task that answer their HE health route (others are skipped)."""
        found: list[StageNode] = []
        for node in self.view.get("/inference-nodes")["nodes"]:
            if self.task_id not in node["tasks"] or node.get("status", "active") != "active":
                continue
            try:
                resp = self._http.get(f"{str(node['endpoint']).rstrip('/')}/v2/he/health")
                doc = resp.json() if resp.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                doc = None
            if not isinstance(doc, dict) or doc.get("node") != node["did"]:
                continue  # not an HE node, down, or answering with another key than the one registered
            stages = doc.get("stages")
            version = doc.get("version")
            found.append(StageNode(did=str(node["did"]), endpoint=str(node["endpoint"]),
                                   model=doc.get("model") if isinstance(doc.get("model"), str) else None,
                                   version=version if isinstance(version, int) else None,
                                   stages=tuple(s for s in stages if isinstance(s, int))
                                   if isinstance(stages, list) else ()))
        return found

    def infer(self, features: npt.ArrayLike, submitter: Any | None = None) -> EncryptedAnswer:
        """Encrypt one input, run it through the stage nodes, decrypt; with submitter, report it on chain."""
        hops = plan_hops(self.stage_nodes(), self.task_id, self.version, self.n_stages)
        result = self.client.infer(features, hops, self.task_id, self.version, self.num_outputs)
        request_id = result.receipts[0].request_id
        answer = EncryptedAnswer(task_id=self.task_id, version=self.version, request_id=request_id, result=result,
                                 hops=tuple(hops))
        if submitter is None:
            return answer
        outcome = submitter.send("report_encrypted_inference", {
            "task_id": self.task_id, "request_id": request_id, "receipts": [r.to_json() for r in result.receipts]})
        record = self.view.get(f"/inference-encrypted/{request_id}")
        return EncryptedAnswer(task_id=self.task_id, version=self.version, request_id=request_id, result=result,
                               hops=tuple(hops), record=dict(record), height=int(outcome.height))
