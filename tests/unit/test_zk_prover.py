"""The node's proving queue and its HTTP routes, with real ezkl proofs: job lifecycle and bad requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from fedledger.abci_app.modules.zk.msgs import SubmitInferenceProof
from fedledger.abci_app.modules.zk.verifier import ZkVerifier
from fedledger.node.inference.holder import ModelHolder
from fedledger.node.inference.prover import KeyCache, ProofScheduler, setup_builder
from fedledger.node.inference.server import create_app
from fedledger.sdk.zk.errors import ZkSetupError
from fedledger.sdk.zk.proof import Proof, verify_proof
from fedledger.sdk.zk.setup import CircuitSetup
from tests.zk_support import INPUT, ZkKit, build_kit

NODE_KEY = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> ZkKit:
    return build_kit(tmp_path_factory.mktemp("zk"))


@pytest.fixture()
def scheduler(kit: ZkKit) -> Iterator[ProofScheduler]:
    def build(version: int, mode: str) -> CircuitSetup:
        if (version, mode) != (1, "hashed"):
            raise ZkSetupError(f"no circuit for version {version} ({mode})")
        return kit.v1

    s = ProofScheduler("digits", KeyCache(build), NODE_KEY, max_queue=2)
    yield s
    s.close()


@pytest.fixture()
def http(scheduler: ProofScheduler) -> Iterator[TestClient]:
    app = create_app(ModelHolder(), model_name="digits", prover=scheduler)
    with TestClient(app) as client:
        yield client


def wait_done(http: TestClient, job_id: str, timeout_s: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = http.get(f"/v2/prove/{job_id}").json()
        if doc["state"] in ("done", "failed"):
            return dict(doc)
        time.sleep(0.1)
    raise AssertionError("the proving job did not finish")


def test_job_lifecycle_over_http(http: TestClient, kit: ZkKit) -> None:
    assert "fedledger_zk_prove" in http.get("/v2").json()["extensions"]
    r = http.post("/v2/models/digits/versions/1/prove", json={"id": "r1", "input_mode": "hashed",
                                                              "data": INPUT.tolist()})
    assert r.status_code == 202 and r.json()["state"] == "pending"
    doc = wait_done(http, r.json()["job_id"])
    assert doc["state"] == "done", doc
    proof = Proof.from_json(doc["proof"], kit.v1.settings, "hashed")
    assert proof.outputs == kit.proof_v1.outputs and proof.input_hash == kit.proof_v1.input_hash
    verifier = ZkVerifier(kit.srs.path)
    try:
        verify_proof(proof, kit.v1.settings, kit.v1.vk, verifier)
    finally:
        verifier.close()
    # The signed submission parses as the chain parses it (the node's signature checks out).
    msg = SubmitInferenceProof.parse(dict(doc["submission"]))  # type: ignore[arg-type]
    assert msg.request_id == "r1" and msg.version == 1


def test_a_job_that_cannot_be_proven_fails_with_a_reason(http: TestClient) -> None:
    r = http.post("/v2/models/digits/versions/9/prove", json={"id": "r", "data": INPUT.tolist()})
    doc = wait_done(http, r.json()["job_id"])
    assert doc["state"] == "failed" and "no circuit for version 9" in str(doc["reason"])
    r = http.post("/v2/models/digits/versions/1/prove", json={"id": "r", "data": [0.5] * 10})
    doc = wait_done(http, r.json()["job_id"])
    assert doc["state"] == "failed" and "64 finite numbers" in str(doc["reason"])


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("/v2/models/other/versions/1/prove", {"id": "r", "data": [1.0]}, 404, "not served here"),
    ("/v2/models/digits/versions/x/prove", {"id": "r", "data": [1.0]}, 400, "positive integer"),
    ("/v2/models/digits/versions/1/prove", {"id": "r", "data": "abc"}, 400, "flat list"),
    ("/v2/models/digits/versions/1/prove", {"data": [1.0]}, 400, "id"),
    ("/v2/models/digits/versions/1/prove", {"id": "r", "data": [1.0], "input_mode": "open"}, 400, "input_mode"),
    ("/v2/models/digits/versions/1/prove", {"id": "r", "data": [1.0, "x"]}, 400, "finite numbers"),
])
def test_bad_requests_get_clear_4xx(http: TestClient, path: str, body: dict[str, object], status: int,
                                    words: str) -> None:
    r = http.post(path, json=body)
    assert r.status_code == status and words in r.json()["error"]


def test_unknown_job_and_non_json(http: TestClient) -> None:
    r = http.get("/v2/prove/nope")
    assert r.status_code == 404 and "no proving job" in r.json()["error"]
    r = http.post("/v2/models/digits/versions/1/prove", content=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["error"]


def test_a_full_queue_refuses_with_429(kit: ZkKit) -> None:
    gate = threading.Event()

    def slow(version: int, mode: str) -> CircuitSetup:
        gate.wait(30)
        raise ZkSetupError("stopped")

    s = ProofScheduler("digits", KeyCache(slow), NODE_KEY, max_queue=1)
    try:
        s.submit(1, "hashed", [0.0], "a")  # taken by the worker, blocked on the gate
        time.sleep(0.2)
        s.submit(1, "hashed", [0.0], "b")  # waits in the queue
        with pytest.raises(Exception, match="queue is full") as info:
            s.submit(1, "hashed", [0.0], "c")
        assert getattr(info.value, "status", None) == 429
    finally:
        gate.set()
        s.close()


def test_setup_builder_uses_the_node_s_artifacts(kit: ZkKit, tmp_path: Path) -> None:
    from fedledger.sdk.inference.onnx_export import export_onnx
    from fedledger.sdk.ml.model import initial_weights

    artifacts = {1: export_onnx("mlp-digits", initial_weights("mlp-digits", 1))}
    build = setup_builder("digits", artifacts.get, kit.srs, kit.v1.folder.parent)
    assert build(1, "hashed").vk_sha256 == kit.v1.vk_sha256  # found in the cache the kit built
    with pytest.raises(ZkSetupError, match="no artifact of version 3"):
        build(3, "hashed")
