"""A chain ready for inference on a running localnet: members admitted, tasks created, versions promoted with artifacts.

Used by `fedledger bench inference` and the inference integration tests. A version is promoted
the short way: a round with one contribution the chain records but nobody aggregates, the
proposal of chosen weights with their ONNX artifact, and two evaluators' attestations. The
inference path under test (artifact, nodes, receipts, tallies) is the real one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fedledger.localnet.dev import dev_credential
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.inference.onnx_export import export_onnx
from fedledger.sdk.keys import Key, KeyStore
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from fedledger.sdk.tensors import encode_tensors

__all__ = ["GOOD", "QUARANTINE", "InferenceChain"]

GOOD = {"canary_accuracy_ppm": 900_000, "backdoor_asr_ppm": 10_000, "metrics_sha256": "ab" * 32}
QUARANTINE = {"canary_accuracy_ppm": 100_000, "backdoor_asr_ppm": 10_000, "metrics_sha256": "cd" * 32}
_DP = {"noise_multiplier": "1", "sample_rate": "0.1", "steps": 10, "clip_norm": "1"}


class InferenceChain:
    """Keys in `keys_home` admitted on the localnet in `net_home`; `roles` maps extra key names to roles."""

    def __init__(self, net_home: Path, keys_home: Path, rpc: CometRPC, store: Any, roles: dict[str, str]) -> None:
        self.rpc, self.store, self.view = rpc, store, ChainView(rpc)
        base = {"owner": "aggregator", "trainer": "trainer", "ev0": "evaluator", "ev1": "evaluator",
                "client": "auditor"}
        ks = KeyStore(keys_home)
        self.roles = {**base, **roles}
        self.keys: dict[str, Key] = {n: ks.load(n) if (keys_home / "keys" / f"{n}.json").exists() else ks.create(n)
                                     for n in self.roles}
        self.subs = {n: Submitter(rpc, k) for n, k in self.keys.items()}
        pending = [(self.subs[n], self.subs[n].broadcast("admit", {"credential": dev_credential(net_home, self.keys[n],
                                                                                                r)}))
                   for n, r in self.roles.items()]
        for sub, h in pending:
            sub.wait(h)
        self.rounds: dict[str, int] = {}
        self.specs: dict[str, str] = {}

    def ref(self, data: bytes) -> dict[str, Any]:
        """Put bytes in the store: {cid, sha256, size}."""
        return {"cid": self.store.put(data), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

    def create_task(self, task_id: str, spec: str) -> None:
        """A task of model `spec` owned and aggregated by `owner`."""
        self.subs["owner"].send("create_task", {
            "task_id": task_id, "model_spec": spec, "round_size": 1, "min_contributions": 1, "deadline_blocks": 50,
            "aggregator": self.keys["owner"].public_hex, "initial_model": self.ref(encode_tensors(
                initial_weights(spec, 0))), "privacy": {"epsilon": "1000", "delta": "1e-5", "org_epsilon": None}})
        self.rounds[task_id] = 0
        self.specs[task_id] = spec

    def promote(self, task_id: str, seed: int, metrics: dict[str, Any] = GOOD) -> int:
        """Propose weights initial_weights(spec, seed) with their artifact and attest them; returns the version."""
        self.rounds[task_id] += 1
        number, owner = self.rounds[task_id], self.subs["owner"]
        owner.send("open_round", {"task_id": task_id, "round": number})
        base = self.view.round(task_id, number)["base_version"]
        self.subs["trainer"].send("commit_contribution", {
            "task_id": task_id, "round": number, "base_version": base, "num_examples": 10, "dp": _DP,
            **self.ref(b"update %s %d" % (task_id.encode(), number))})
        owner.send("close_round", {"task_id": task_id, "round": number})
        weights = initial_weights(self.specs[task_id], seed)
        res = owner.send("propose_version", {
            "task_id": task_id, "round": number, **self.ref(encode_tensors(weights)),
            "contributors": [self.keys["trainer"].public_hex],
            "artifact": {"format": "onnx", **self.ref(export_onnx(self.specs[task_id], weights))}})
        version = int(res.attr("fl", "version") or 0)
        for ev in ("ev0", "ev1"):
            self.subs[ev].send("attest_version", {"task_id": task_id, "version": version, **metrics})
        return version
