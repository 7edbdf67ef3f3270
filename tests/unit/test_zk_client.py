"""client/zk_infer.py end to end in process: a node that proves over HTTP, a chain that verifies, a client between."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fedledger.abci_app.modules.zk import verifier
from fedledger.abci_app.store import CommittedStore
from fedledger.client.zk_infer import ProofJobError, ZkInferenceClient
from fedledger.node.inference.holder import ModelHolder
from fedledger.node.inference.prover import KeyCache, ProofScheduler
from fedledger.node.inference.server import create_app
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.zk.errors import ZkSetupError
from fedledger.sdk.zk.proof import input_hash_of
from fedledger.sdk.zk.setup import CircuitSetup
from tests.inference_support import TASK, InferenceWorld
from tests.support import Chain
from tests.zk_support import (
    INPUT,
    InProcessQueries,
    InProcessSender,
    ZkKit,
    build_kit,
    propose_version_2,
    zk_genesis,
)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> ZkKit:
    return build_kit(tmp_path_factory.mktemp("zk"))


@pytest.fixture()
def setup_env(kit: ZkKit, tmp_path: Path) -> Iterator[tuple[InferenceWorld, ZkInferenceClient, ProofScheduler]]:
    verifier.configure(kit.srs.path)
    chain = Chain(CommittedStore(tmp_path / "s.db"), zk_genesis(kit.srs.sha256))
    w = InferenceWorld(chain)
    propose_version_2(w)
    chain.ok(w.owner.tx("register_zk_circuit", kit.v1.register_body()),
             w.agg.tx("register_zk_circuit", kit.v2.register_body()))

    def build(version: int, mode: str) -> CircuitSetup:
        # A lying node: it "serves" version 2 with version 1's keys.
        if mode == "hashed" and version in (1, 2):
            return kit.v1
        raise ZkSetupError(f"no circuit for version {version}")

    scheduler = ProofScheduler(TASK, KeyCache(build), w.nodes[0].key)
    node = TestClient(create_app(ModelHolder(), model_name=TASK, prover=scheduler))
    client = ZkInferenceClient(node, ChainView(InProcessQueries(chain)), verifier.active(), TASK, TASK,
                               sender=InProcessSender(chain, w.client))
    yield w, client, scheduler
    scheduler.close()
    node.close()
    verifier.configure(None)


def test_proven_inference_is_verified_posted_and_recorded(setup_env: tuple[InferenceWorld, ZkInferenceClient,
                                                                         ProofScheduler], kit: ZkKit) -> None:
    w, client, _ = setup_env
    result = client.infer(1, INPUT, "req-1", timeout_s=120)
    assert result.record is not None and result.record["verdict"] == "valid"
    assert result.record["outputs"] == list(result.proof.outputs) and result.record["node"] == w.did(0)
    assert result.proof.input_hash == input_hash_of(INPUT, 13)
    np.testing.assert_allclose(result.outputs, [o / 8192 for o in kit.proof_v1.outputs])


def test_client_refuses_a_proof_of_another_version_or_input(setup_env: tuple[InferenceWorld, ZkInferenceClient,
                                                                            ProofScheduler], kit: ZkKit) -> None:
    _, client, _ = setup_env
    # The node proves "version 2" with version 1's keys: the chain's v2 vk rejects it before anything is posted.
    with pytest.raises(ProofJobError, match="does not verify"):
        client.infer(2, INPUT, "req-2", timeout_s=120)
    # A job proven for one input does not pass for another.
    doc = client.wait(client.request(1, INPUT, "req-3"), 120)
    with pytest.raises(ProofJobError, match="another input"):
        client.check(doc, 1, INPUT + 0.25, "req-3", "hashed")
    with pytest.raises(ProofJobError, match="could not prove"):
        client.infer(7, INPUT, "req-4", timeout_s=60)
