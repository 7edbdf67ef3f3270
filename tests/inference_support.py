"""Test support for inference: a chain with a task, a proposed version and registered inference nodes."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.credentials import ROLES
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.modules.inference.receipts import Receipt
from fedledger.sdk.inference.receipts import sign_receipt
from tests.support import DP, ISSUER, ORG, POLICY, Chain, Signer, model_ref

TASK = "digits"


def inference_genesis() -> bytes:
    """The test organization, allowed to grant every role (inference included)."""
    return canonical_bytes({"identity": {"organizations": [{
        "id": ORG, "name": "Test org", "enrollment_cap": 100, "roles": list(ROLES),
        "issuers": [did_from_private_key(ISSUER)]}]}})


def query(chain: Chain, path: str) -> Any:
    res = chain.sm.query(path, b"", False)
    assert res.code == 0, res.log
    return json.loads(res.value)


class InferenceWorld:
    """An owner, an aggregator, two trainers, a client, and `nodes` registered inference nodes; version 1 proposed."""

    def __init__(self, chain: Chain, nodes: int = 3) -> None:
        self.chain = chain
        self.owner, self.agg, self.client = Signer(10), Signer(11), Signer(12)
        self.trainers = [Signer(20 + i) for i in range(2)]
        self.nodes = [Signer(60 + i) for i in range(nodes)]
        chain.ok(self.owner.admit("validator-admin"), self.agg.admit("aggregator"), self.client.admit("auditor"),
                 *[t.admit("trainer") for t in self.trainers], *[n.admit("inference") for n in self.nodes])
        chain.ok(self.owner.tx("create_task", {
            "task_id": TASK, "model_spec": "mlp-digits", "round_size": 2, "min_contributions": 1,
            "deadline_blocks": 30, "aggregator": self.agg.hex, "initial_model": model_ref("v0"), "privacy": POLICY}))
        chain.ok(self.agg.tx("open_round", {"task_id": TASK, "round": 1}))
        chain.ok(*[t.tx("commit_contribution", {"task_id": TASK, "round": 1, "base_version": 0, "num_examples": 10,
                                                 "dp": DP, **model_ref(f"u{i}")}) for i, t in enumerate(self.trainers)])
        chain.ok(self.agg.tx("close_round", {"task_id": TASK, "round": 1}))
        chain.ok(self.agg.tx("propose_version", {"task_id": TASK, "round": 1, **model_ref("v1"),
                                                  "contributors": sorted(t.hex for t in self.trainers)}))
        chain.ok(*[n.tx("register_inference_node", {"endpoint": f"http://127.0.0.1:{8100 + i}", "tasks": [TASK]})
                   for i, n in enumerate(self.nodes)])

    def did(self, i: int) -> str:
        return did_from_private_key(self.nodes[i].key)

    def receipt(self, i: int, request_id: str, logits: list[float], *, x: float = 1.0, version: int = 1,
                height: int = 1) -> Receipt:
        """Node i's signed receipt for input [[x]*4] answered with `logits`."""
        return sign_receipt(self.nodes[i].key, task_id=TASK, version=version, request_id=request_id,
                            inputs={"input": np.full((1, 4), x, dtype=np.float32)},
                            outputs={"logits": np.asarray([logits], dtype=np.float32)}, height=height)

    def report(self, requests: list[list[Receipt]], **extra: Any) -> bytes:
        return self.client.tx("report_receipts", {"task_id": TASK, "requests": [[r.to_json() for r in req]
                                                                                for req in requests], **extra})
