"""The inference node's HE stages: cut from the verified artifact, mounted on its app, swapped with the version.

The node is the real InferenceNode on a real uvicorn port; the chain and the content store are
in-memory fakes behind the interfaces the node uses (last_good, version, task; get by CID). The
encrypted arithmetic through these routes is covered by test_he_e2e.py and the localnet test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import UnavailableError
from fedledger.client.critical_infer import EncryptedInference, StageNode, plan_hops
from fedledger.client.infer import NoNodesError, TierError
from fedledger.node.inference.he_stages import is_poly_spec, poly_stages_from_onnx, select_stages
from fedledger.node.inference.service import InferenceNode
from fedledger.sdk.he.errors import HEParamsError
from fedledger.sdk.he.poly import split_stages
from fedledger.sdk.inference.onnx_export import export_onnx
from fedledger.sdk.keys import Key
from fedledger.sdk.ml.model import initial_weights

POLY = "mlp-digits-poly"
TASK = "t-he"


class FakeChain:
    """The reads an InferenceNode and EncryptedInference make, answered from dicts."""

    def __init__(self, spec: str) -> None:
        self.spec, self.height, self.good = spec, 1, 0
        self.versions: dict[int, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.paths: dict[str, Any] = {}

    def promote(self, version: int, seed: int, artifact: bool = True) -> None:
        rec: dict[str, Any] = {"version": version, "status": "promoted", "proposer": "p"}
        if artifact:
            data = export_onnx(self.spec, initial_weights(self.spec, seed))
            sha = hashlib.sha256(data).hexdigest()
            self.blobs[sha] = data
            rec["artifact"] = {"format": "onnx", "cid": sha, "sha256": sha, "size": len(data)}
        self.versions[version] = rec
        self.good, self.height = version, self.height + 1

    # ChainView
    def last_good(self, task_id: str) -> int:
        return self.good

    def version(self, task_id: str, version: int) -> dict[str, Any]:
        return self.versions[version]

    def task(self, task_id: str) -> dict[str, Any]:
        return {"task_id": task_id, "model_spec": self.spec}

    def get(self, path: str) -> Any:
        return self.paths[path]

    def exists(self, path: str) -> bool:
        return path in self.paths

    # status and the content store
    def status(self) -> dict[str, Any]:
        return {"sync_info": {"latest_block_height": str(self.height)}}

    def store_get(self, cid: str, sha256: str) -> bytes:
        return self.blobs[cid]


class Store:
    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain

    def get(self, cid: str, sha256: str) -> bytes:
        return self.chain.store_get(cid, sha256)


def make_node(chain: FakeChain, tmp: Path, stages: tuple[int, ...] | None, status: Any = None,
              name: str = "n") -> InferenceNode:
    return InferenceNode(key=Key.generate(name), task_id=TASK, view=chain, status=status or chain.status,  # type: ignore[arg-type]
                         store=Store(chain), cache_dir=tmp, submitter=None, poll=3600.0, he_stages=stages)


@pytest.fixture()
def started(tmp_path: Path) -> Iterator[tuple[FakeChain, InferenceNode]]:
    chain = FakeChain(POLY)
    chain.promote(1, seed=1)
    node = make_node(chain, tmp_path, (1,))
    node.start(register=False)
    try:
        yield chain, node
    finally:
        node.stop()


def health(node: InferenceNode) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{node.url}/v2/he/health").json()
    return doc


def test_stages_read_back_from_the_artifact_equal_the_weights_split() -> None:
    weights = initial_weights(POLY, 7)
    from_onnx = poly_stages_from_onnx(export_onnx(POLY, weights), POLY)
    direct = split_stages(POLY, weights)
    assert len(from_onnx) == 2
    for a, b in zip(from_onnx, direct, strict=True):
        # float32 initializers read back as float64: exactly the float32 weights the plaintext model runs.
        np.testing.assert_array_equal(a.matrix, b.matrix.astype(np.float32).astype(np.float64))
        assert (a.square, a.last) == (b.square, b.last)
    with pytest.raises(HEParamsError, match="not an ONNX model"):
        poly_stages_from_onnx(b"not onnx", POLY)
    relu = export_onnx("mlp-digits", initial_weights("mlp-digits", 0))
    with pytest.raises(HEParamsError, match="square-activation"):
        poly_stages_from_onnx(relu, "mlp-digits")
    assert is_poly_spec(POLY) and not is_poly_spec("mlp-digits") and not is_poly_spec("no-such-spec")
    assert sorted(select_stages(from_onnx, [1, 1, 0])) == [0, 1]
    with pytest.raises(HEParamsError, match="stage 2 does not exist"):
        select_stages(from_onnx, [2])


def test_node_serves_only_its_stage_and_swaps_it_with_the_version(started: tuple[FakeChain, InferenceNode]) -> None:
    chain, node = started
    doc = health(node)
    assert doc == {"model": TASK, "version": 1, "stage": 1, "stages": [1], "node": node.signer.did,
                   "params": doc["params"]}
    served = node.he_served
    assert served is not None and list(served.stages) == [1]
    expected = split_stages(POLY, initial_weights(POLY, 1))[1].matrix.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(served.stages[1].matrix, expected)
    # The plaintext OIP model is still served next to it.
    assert httpx.get(f"{node.url}/v2/models/{TASK}").status_code == 200
    chain.promote(2, seed=2)
    node.sync()
    assert health(node)["version"] == 2
    served = node.he_served
    assert served is not None
    np.testing.assert_array_equal(served.stages[1].matrix, split_stages(POLY, initial_weights(POLY, 2))[1]
                                  .matrix.astype(np.float32).astype(np.float64))
    # A request for the version swapped out is refused as the wrong stage, before the body is parsed.
    old = httpx.post(f"{node.url}/v2/models/{TASK}/versions/1/stages/1/he", content=b"x")
    assert old.status_code == 409 and old.json()["code"] == "HE_STAGE" and "version 2" in old.json()["error"]
    chain.promote(3, seed=3, artifact=False)  # a last good version without an artifact: nothing is served
    node.sync()
    assert node.he_served is None and health(node)["stages"] == []
    gone = httpx.post(f"{node.url}/v2/models/{TASK}/versions/2/stages/1/he", content=b"x")
    assert gone.status_code == 409 and gone.json()["code"] == "HE_STAGE"


def test_a_restarted_node_serves_its_cached_stages_while_the_chain_is_unreachable(tmp_path: Path) -> None:
    chain = FakeChain(POLY)
    chain.promote(1, seed=1)
    first = make_node(chain, tmp_path, (0,))
    first.start(register=False)
    first.stop()

    def dead() -> dict[str, Any]:
        raise UnavailableError("connection refused")

    again = make_node(chain, tmp_path, (0,), status=dead)
    again.start(register=False)
    try:
        assert health(again)["version"] == 1 and health(again)["stages"] == [0]
    finally:
        again.stop()


def test_no_he_stages_for_a_relu_model_or_without_the_option(tmp_path: Path) -> None:
    chain = FakeChain("mlp-digits")
    chain.promote(1, seed=1)
    node = make_node(chain, tmp_path / "a", (0,))
    node.start(register=False)
    try:
        assert node.version == 1 and node.he_served is None and health(node)["stages"] == []
    finally:
        node.stop()
    plain = make_node(FakeChain(POLY), tmp_path / "b", None)
    plain.start(register=False)
    try:
        assert httpx.get(f"{plain.url}/v2/he/health").status_code == 404  # the routes are not mounted
    finally:
        plain.stop()


def _sn(did: str, stages: tuple[int, ...], version: int = 1, model: str = TASK) -> StageNode:
    return StageNode(did=did, endpoint=f"http://{did}", model=model, version=version, stages=stages)


def test_plan_hops_uses_a_node_per_stage_and_names_a_missing_stage() -> None:
    hops = plan_hops([_sn("b", (1,)), _sn("both", (0, 1)), _sn("a", (0,))], TASK, 1, 2)
    assert [(h.stage, h.node_did) for h in hops] == [(0, "a"), (1, "b")]
    hops = plan_hops([_sn("both", (0, 1)), _sn("b", (1,))], TASK, 1, 2)
    assert [h.node_did for h in hops] == ["both", "b"]
    with pytest.raises(NoNodesError, match="stage 1"):
        plan_hops([_sn("both", (0, 1))], TASK, 1, 2)  # one node may not hold two stages of a request
    with pytest.raises(NoNodesError, match="stage 0"):
        plan_hops([_sn("a", (0,), version=2), _sn("x", (0,), model="other"), _sn("b", (1,))], TASK, 1, 2)


def test_encrypted_inference_refuses_a_policy_without_ckks() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    chain = FakeChain(POLY)
    for policy in ({"tier": "general", "k": 3}, {"tier": "critical", "k": 1, "guarantees": ["zk"]}):
        chain.paths[f"/inference-policy/{TASK}"] = policy
        with pytest.raises(TierError, match="ckks"):
            EncryptedInference(chain, TASK, Ed25519PrivateKey.generate())  # type: ignore[arg-type]


def test_stage_nodes_skips_nodes_that_are_down_or_answer_with_another_key(
        started: tuple[FakeChain, InferenceNode]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    chain, node = started
    other = did_from_private_key(Ed25519PrivateKey.generate())
    chain.paths[f"/inference-policy/{TASK}"] = {"tier": "critical", "k": 1, "guarantees": ["ckks"]}
    chain.paths["/inference-nodes"] = {"nodes": [
        {"did": node.signer.did, "endpoint": node.url, "tasks": [TASK], "status": "active"},
        {"did": other, "endpoint": node.url, "tasks": [TASK], "status": "active"},  # someone else's endpoint
        {"did": "did:key:zdown", "endpoint": "http://127.0.0.1:9", "tasks": [TASK], "status": "active"},
        {"did": node.signer.did, "endpoint": node.url, "tasks": ["elsewhere"], "status": "active"},
    ]}
    client = EncryptedInference(chain, TASK, Ed25519PrivateKey.generate())  # type: ignore[arg-type]
    try:
        found = client.stage_nodes()
    finally:
        client.close()
    assert found == [StageNode(did=node.signer.did, endpoint=node.url, model=TASK, version=1, stages=(1,))]
    assert client.n_stages == 2 and client.num_outputs == 10
