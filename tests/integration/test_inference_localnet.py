"""Decentralized inference on a real 4-validator localnet: real inference nodes (uvicorn + onnxruntime) started here.

One chain for the module: a task whose version 1 is promoted with its ONNX artifact, three nodes
(one of them lying), then a hot swap to version 2, a quarantined version 3 nobody serves, a stale
node, a partitioned node, malformed requests, and the CLI (`infer`, `query inference`,
`model export`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fedledger.bench.inference_setup import GOOD, QUARANTINE, InferenceChain
from fedledger.client.infer import VerifiedInference
from fedledger.client.receipt_reporter import ReceiptReporter
from fedledger.client.split_infer import SplitInference
from fedledger.ipfs import open_store
from fedledger.localnet import manager
from fedledger.node.inference.faults import make_fault
from fedledger.node.inference.service import InferenceNode
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.inference.canonical import input_hash
from fedledger.sdk.keys import Key
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TASK = "digits"
SPEC = "mlp-digits"
BAD = QUARANTINE


@dataclass
class World:
    net: Any
    cli: Any
    rpc: CometRPC
    chain: InferenceChain
    nodes: dict[str, InferenceNode]

    @property
    def view(self) -> ChainView:
        return self.chain.view

    @property
    def store(self) -> Any:
        return self.chain.store

    @property
    def keys(self) -> dict[str, Key]:
        return self.chain.keys

    @property
    def subs(self) -> dict[str, Submitter]:
        return self.chain.subs

    def promote(self, seed: int, metrics: dict[str, Any] = GOOD) -> int:
        return self.chain.promote(TASK, seed, metrics)

    def node(self, name: str, **kw: Any) -> InferenceNode:
        node = InferenceNode(key=self.keys[name], task_id=TASK, view=ChainView(self.rpc), status=self.rpc.status,
                             store=self.store, cache_dir=self.cli.home / "cache" / name,
                             submitter=Submitter(self.rpc, self.keys[name]), poll=kw.pop("poll", 5.0),
                             events_url=kw.pop("events_url", self.rpc.url), **kw)
        node.start()
        self.nodes[name] = node
        return node


def wait_for(cond: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def world(kit: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("inference")
    with kit.running_localnet(root / "net") as net:
        cli = kit.Cli(root / "home", net.home, root / "logs")
        rpc = CometRPC(manager.rpc_url(net.home, 0))
        store = open_store(manager.store_spec(net.home) or f"embedded:{root / 'store'}")
        chain = InferenceChain(net.home, cli.home, rpc, store, {n: "inference" for n in
                                                                 ("n0", "n1", "liar", "old", "cut")})
        chain.create_task(TASK, SPEC)
        w = World(net, cli, rpc, chain, {})
        try:
            yield w
        finally:
            for node in w.nodes.values():
                node.stop()
            cli.close()


def rows(n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 64)).astype(np.float32)


def test_cbv_outvotes_and_slashes_a_lying_node(world: World) -> None:
    assert world.promote(1) == 1
    assert world.view.version(TASK, 1)["status"] == "promoted"
    for name in ("n0", "n1"):
        world.node(name)
    world.node("liar", transform=make_fault("perturb"))
    wait_for(lambda: all(n.version == 1 for n in world.nodes.values()), "three nodes serving version 1")
    reporter = ReceiptReporter(world.subs["client"], TASK, store=world.store, interval=0.3)
    client = VerifiedInference(world.view, world.rpc.status, TASK, sink=reporter)
    assert {n["did"] for n in client.selected} == {n.signer.did for n in world.nodes.values()}
    liar = world.nodes["liar"].signer.did
    answers = [client.infer({"input": rows(seed=i)}) for i in range(5)]
    client.close()
    assert reporter.flush(60)
    reporter.close()
    expected = world.nodes["n0"].holder.current.model.run({"input": rows(seed=0)})  # type: ignore[union-attr]
    np.testing.assert_allclose(answers[0].outputs["logits"], expected["logits"], atol=1e-6)
    assert all(a.dissenters == (liar,) and len(a.tally.majority) == 2 for a in answers)  # 100% outvoted
    assert all(p.error is None for p in reporter.posted), reporter.posted
    slashes = world.view.get("/inference-slashes")["slashes"]
    assert {s["node"] for s in slashes} == {liar}  # nothing honest slashed
    batches = {p.batch: p.height for p in reporter.posted}
    assert all(s["height"] == batches[s["batch"]] for s in slashes)  # slashed in the batch's own block
    node = world.view.get(f"/inference-node/{liar}")
    assert node["status"] == "suspended" and node["dissented"] >= 3
    req = world.view.get(f"/inference-request/{answers[0].request_hash}")
    assert req["version"] == 1 and req["dissenters"] == [liar] and req["outcome"] == "majority"


def test_malformed_requests_get_oip_errors(world: World) -> None:
    url = world.nodes["n0"].url
    for body, status, words in (
        (b"{not json", 400, "json"),
        (json.dumps({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
                                 "data": [1, 2, 3]}]}).encode(), 400, "shape"),
        (json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "INT64",
                                 "data": [1] * 64}]}).encode(), 400, "fp32"),
    ):
        resp = httpx.post(f"{url}/v2/models/{TASK}/infer", content=body)
        assert resp.status_code == status and words in resp.json()["error"].lower(), resp.text
    resp = httpx.post(f"{url}/v2/models/nope/infer", content=b"{}")
    assert resp.status_code == 404 and "error" in resp.json()
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200


def test_hot_swap_on_promotion_and_never_a_quarantined_version(world: World) -> None:
    old = world.node("old", poll=3600.0, events_url=None)  # follows once at start, then never: a stale node
    assert old.version == 1
    assert world.promote(2) == 2
    wait_for(lambda: world.nodes["n0"].version == 2 and world.nodes["n1"].version == 2, "the swap to version 2")
    assert world.promote(3, BAD) == 3
    assert world.view.version(TASK, 3)["status"] == "quarantined"
    time.sleep(2)
    assert world.nodes["n0"].version == 2 and 3 not in world.nodes["n0"].swaps
    client = VerifiedInference(world.view, world.rpc.status, TASK)
    try:
        answer = client.infer({"input": rows(seed=9)})
    finally:
        client.close()
    assert answer.version == 2 and answer.tally.outcome == "unanimous"
    failed = dict(answer.failed)
    if old.signer.did in {a.did for a in answer.answers}:  # drawn: it answered for the wrong version
        assert "404" in failed[old.signer.did]


def test_split_pipeline_with_replicated_stages_and_chained_receipts(world: World) -> None:
    reporter = ReceiptReporter(world.subs["client"], TASK, interval=0.3)
    client = SplitInference(world.view, world.rpc.status, world.store, TASK, parts=3, k=2, sink=reporter)
    try:
        x = rows(3, seed=5)
        answer = client.infer({"input": x})
    finally:
        client.close()
    assert reporter.flush(60)
    reporter.close()
    full = world.nodes["n0"].holder.current.model.run({"input": x})  # type: ignore[union-attr]
    np.testing.assert_allclose(answer.outputs["logits"], full["logits"], atol=1e-5)
    assert answer.version == 2 and [h.segment for h in answer.hops] == ["2/3", "3/3"]
    first, second = answer.hops
    assert first.tally.outcome == "unanimous" and len(first.tally.majority) == 2
    # The first node stage never saw the raw input: it got the head's activation (here also 64 wide).
    assert all(r.input_hash != input_hash({"input": x}) for r in first.receipts)
    assert any("not served" in why for _, why in first.failed if why) or not first.failed  # the stale node's 404
    assert all(r.prev == "" for r in first.receipts)
    winner = min(first.receipts, key=lambda r: r.node)
    assert all(r.prev == winner.hash for r in second.receipts)  # every hop names the previous one
    assert all(p.error is None for p in reporter.posted), reporter.posted
    segments = {world.view.get(f"/inference-batch/{p.batch}")["requests"][0]["segment"] for p in reporter.posted}
    assert segments <= {"2/3", "3/3"} and segments


def test_partitioned_node_serves_its_cached_version_marked_stale(world: World) -> None:
    dead = CometRPC("http://127.0.0.1:9")  # nothing listens: the chain is unreachable
    cut = world.node("cut")
    wait_for(lambda: cut.version == 2, "the cut node serving version 2")
    cut.stop()
    again = InferenceNode(key=world.keys["cut"], task_id=TASK, view=ChainView(dead), status=dead.status,
                          store=world.store, cache_dir=world.cli.home / "cache" / "cut", submitter=None, poll=0.2)
    again.start(register=False)
    world.nodes["cut-again"] = again
    body = {"id": "p1", "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                     "data": rows(1).reshape(-1).tolist()}]}
    resp = httpx.post(f"{again.url}/v2/models/{TASK}/infer", json=body).json()
    assert resp["parameters"]["fedledger_version"] == "2" and resp["parameters"]["fedledger_stale"] is True
    assert "unreachable" in resp["parameters"]["fedledger_stale_reason"] or \
        "cached" in resp["parameters"]["fedledger_stale_reason"]


def test_cli_infer_query_and_export(world: World, tmp_path: Path) -> None:
    x = tmp_path / "x.npy"
    np.save(x, rows(2, seed=3))
    out = world.cli.json("infer", "--task", TASK, "--input", str(x), "--key", "client")
    assert out["version"] == 2 and out["outcome"] in ("unanimous", "majority") and out["posted"][0]["error"] is None
    req = world.cli.json("query", "inference", "request", out["request_hash"], "--verify")
    assert req["answer"]["version"] == 2 and req["proof"]
    split = world.cli.json("infer", "--task", TASK, "--input", str(x), "--split", "2")
    assert [h["segment"] for h in split["hops"]] == ["2/2"] and split["argmax"]["logits"] == out["argmax"]["logits"]
    f = tmp_path / "v2.onnx"
    res = world.cli.ok("model", "export", TASK, "2", "--out", str(f))
    assert "rebuild it byte for byte" in res.stdout
    assert hashlib.sha256(f.read_bytes()).hexdigest() == world.view.version(TASK, 2)["artifact"]["sha256"]
    bad = world.cli.run("infer", "--task", TASK, "--input", str(tmp_path))
    assert bad.rc != 0
    missing = world.cli.run("model", "export", TASK, "99", "--out", str(f))
    assert missing.rc == 3 and "error:" in missing.stderr


def test_a_governance_rollback_moves_the_nodes_back(world: World) -> None:
    from fedledger.localnet.consortium import dev_issuer_key

    admin = Submitter(world.rpc, Key("issuer", dev_issuer_key(world.net.home)))  # the local org's admin
    admin.send("submit_proposal", {"title": "roll digits back",
                                   "action": {"type": "rollback", "task_id": TASK, "to_version": 1}})
    pid = int(world.view.get("/governance")["next_proposal_id"]) - 1
    admin.send("vote", {"proposal_id": pid, "option": "yes"})
    wait_for(lambda: world.view.last_good(TASK) == 1, "the rollback to pass", timeout=60)
    assert world.view.version(TASK, 2)["status"] == "rolled_back"
    wait_for(lambda: world.nodes["n0"].version == 1 and world.nodes["n1"].version == 1, "the nodes to roll back")
    client = VerifiedInference(world.view, world.rpc.status, TASK)
    try:
        answer = client.infer({"input": rows(seed=11)})
    finally:
        client.close()
    assert answer.version == 1
