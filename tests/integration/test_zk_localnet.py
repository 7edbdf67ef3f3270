"""zk-proven inference on a real 4-validator localnet: a node proves, the client checks, every validator verifies.

The localnet pins its development SRS at genesis and starts each validator with it. The test
promotes a mlp-digits version with its artifact, sets the task critical/zk, registers the
version's circuit through `fedledger zk setup`, starts a real inference node that proves, and
asks through `fedledger infer --tier critical --proof`: the proof is verified locally, then by
all four validators in FinalizeBlock, and recorded valid. A proof the node signed over forged
bytes is recorded invalid against it; a proof under another version's circuit is too.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fedledger.bench.inference_setup import InferenceChain
from fedledger.client.zk_infer import ZkInferenceClient
from fedledger.ipfs import open_store
from fedledger.localnet import manager
from fedledger.localnet.zk_srs import net_srs_path
from fedledger.node.inference.service import InferenceNode
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from fedledger.sdk.zk.proof import Proof
from fedledger.sdk.zk.srs import load_srs
from fedledger.sdk.zk.submission import signed_proof_body

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TASK = "digits"


@pytest.fixture(scope="module")
def world(kit: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, InferenceChain, InferenceNode]]:
    root = tmp_path_factory.mktemp("zk")
    with kit.running_localnet(root / "net") as net:
        cli = kit.Cli(root / "home", net.home, root / "logs")
        rpc = CometRPC(manager.rpc_url(net.home, 0))
        store = open_store(manager.store_spec(net.home) or f"embedded:{root / 'store'}")
        chain = InferenceChain(net.home, cli.home, rpc, store, {"n0": "inference"})
        chain.create_task(TASK, "mlp-digits")
        assert chain.promote(TASK, 1) == 1
        srs_path = net_srs_path(net.home)
        assert srs_path is not None
        pinned = chain.view.get("/zk-params")
        srs = load_srs(srs_path, pinned["srs_logrows"], pinned["srs_sha256"])
        node = InferenceNode(key=chain.keys["n0"], task_id=TASK, view=ChainView(rpc), status=rpc.status, store=store,
                             cache_dir=root / "node-cache", submitter=Submitter(rpc, chain.keys["n0"]),
                             events_url=rpc.url, zk_srs=srs)
        node.start()
        try:
            yield cli, chain, node
        finally:
            node.stop()
            cli.close()


def test_a_proven_inference_is_verified_by_the_chain(world: tuple[Any, InferenceChain, InferenceNode],
                                                     tmp_path: Path) -> None:
    cli, chain, node = world
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).uniform(0, 1, size=(1, 64)).astype(np.float32))

    # a general task refuses --proof, and --proof needs the critical tier
    r = cli.run("infer", "--task", TASK, "--input", str(x), "--tier", "critical", "--proof")
    assert r.rc != 0 and "does not accept zk proofs" in r.stderr, r.describe()
    r = cli.run("infer", "--task", TASK, "--input", str(x), "--proof")
    assert r.rc == 2 and "belong to the critical tier" in r.stderr, r.describe()

    r = cli.run("inference", "policy", "--key", "owner", "--task", TASK, "--tier", "critical", "--k", "1",
                "--guarantee", "zk")
    assert r.rc == 0, r.describe()
    # no circuit yet: a clear error naming the command that registers one
    r = cli.run("infer", "--task", TASK, "--input", str(x), "--tier", "critical", "--proof")
    assert r.rc != 0 and "fedledger zk setup" in r.stderr, r.describe()

    r = cli.run("zk", "setup", "--key", "owner", "--task", TASK, timeout=240)
    assert r.rc == 0 and "registered digits v1 hashed" in r.stdout, r.describe()
    circuit = chain.view.get(f"/zk-circuit/{TASK}/1/hashed")
    assert circuit["artifact_sha256"] == chain.view.version(TASK, 1)["artifact"]["sha256"]

    r = cli.run("infer", "--task", TASK, "--input", str(x), "--tier", "critical", "--proof", "--key", "client",
                "--json", timeout=300)
    assert r.rc == 0, r.describe()
    out = json.loads(r.stdout)
    record = out["record"]
    assert record["verdict"] == "valid" and record["guarantee"] == "zk" and record["version"] == 1
    assert record["node"] == node.signer.did
    # the proven outputs are the served model's, within the circuit's fixed-point precision
    served = node.holder.current.model.run({"input": np.load(x)})["logits"][0]  # type: ignore[union-attr]
    np.testing.assert_allclose(out["outputs"], served, atol=0.05)
    again = cli.run("query", "zk", "proof", TASK, out["request_id"], "--json")
    assert again.rc == 0 and json.loads(again.stdout)["verdict"] == "valid", again.describe()


def test_forged_and_misdirected_proofs_are_on_the_nodes_record(world: tuple[Any, InferenceChain, InferenceNode],
                                                               tmp_path: Path) -> None:
    cli, chain, node = world
    srs_path = net_srs_path(cli.net)
    assert srs_path is not None
    from fedledger.abci_app.modules.zk.verifier import ZkVerifier

    verifier = ZkVerifier(srs_path)
    try:
        with httpx.Client(base_url=node.url, timeout=30.0) as http:
            client = ZkInferenceClient(http, chain.view, verifier, TASK, TASK)  # verify only, post nothing
            x = np.random.default_rng(1).uniform(0, 1, size=(1, 64)).astype(np.float32)
            doc = client.wait(client.request(1, x, "forge-base"), 300)
            proof = client.check(doc, 1, x, "forge-base", "hashed")
    finally:
        verifier.close()
    raw = bytearray(proof.proof)
    raw[len(raw) // 2] ^= 0xFF
    forged = dataclasses.replace(proof, proof=bytes(raw))
    key = chain.keys["n0"].private
    chain.subs["client"].send("submit_inference_proof", signed_proof_body(
        key, forged, task_id=TASK, version=1, request_id="forged-1", input_mode="hashed"))
    rec = chain.view.get(f"/zk-proof/{TASK}/forged-1")
    assert rec["verdict"] == "invalid" and rec["node"] == node.signer.did and rec["guarantee"] == "none"

    # the genuine proof, claimed for a request it was not made for, is still valid math: it proves what it says
    # (version 1, this input); claimed for version 2 it must fail, because v2 has no circuit yet
    assert chain.promote(TASK, 2) == 2
    with pytest.raises(Exception, match="circuit"):
        chain.subs["client"].send("submit_inference_proof", signed_proof_body(
            key, proof, task_id=TASK, version=2, request_id="other-version", input_mode="hashed"))
    assert isinstance(proof, Proof)
