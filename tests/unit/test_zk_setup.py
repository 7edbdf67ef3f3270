"""sdk/zk's setups are reproducible and its proofs check out locally: the hashes the chain records can be rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedledger.abci_app.modules.zk.verifier import ZkVerifier
from fedledger.sdk.inference.onnx_export import export_onnx
from fedledger.sdk.ml.model import initial_weights
from fedledger.sdk.zk.errors import ZkProofError, ZkProvingError, ZkSetupError
from fedledger.sdk.zk.proof import Proof, input_hash_of, prove, verify_proof
from fedledger.sdk.zk.setup import CircuitSetup
from tests.zk_support import INPUT, ZkKit, build_kit


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> ZkKit:
    return build_kit(tmp_path_factory.mktemp("zk"))


def test_anyone_rebuilds_the_same_settings_and_vk_from_the_artifact(kit: ZkKit, tmp_path: Path) -> None:
    artifact = export_onnx("mlp-digits", initial_weights("mlp-digits", 1))
    again = CircuitSetup.build("digits", 1, "hashed", artifact, kit.srs, tmp_path)
    assert again.folder != kit.v1.folder
    assert again.settings_sha256 == kit.v1.settings_sha256
    assert again.vk_sha256 == kit.v1.vk_sha256  # the model-parameter commitment is reproducible
    assert again.artifact_sha256 == kit.v1.artifact_sha256
    assert kit.v1.vk_sha256 != kit.v2.vk_sha256  # other weights, other commitment


def test_local_verification_and_the_input_hash(kit: ZkKit) -> None:
    verifier = ZkVerifier(kit.srs.path)
    try:
        verify_proof(kit.proof_v1, kit.v1.settings, kit.v1.vk, verifier)
        with pytest.raises(ZkProofError, match="does not verify"):
            verify_proof(kit.proof_v1, kit.v2.settings, kit.v2.vk, verifier)
    finally:
        verifier.close()
    assert kit.proof_v1.input_hash == input_hash_of(INPUT, 13)
    assert input_hash_of(INPUT + 0.01, 13) != kit.proof_v1.input_hash
    back = Proof.from_json(kit.proof_v1.to_json(), kit.v1.settings, "hashed")
    assert back == kit.proof_v1
    with pytest.raises(ZkProofError):
        Proof.from_json({"proof": "AAAA", "instances": list(kit.proof_v1.instances[:3])}, kit.v1.settings, "hashed")


def test_bad_inputs_get_clear_errors(kit: ZkKit, tmp_path: Path) -> None:
    with pytest.raises(ZkProvingError, match="64 finite numbers"):
        prove(kit.v1, [1.0, 2.0])
    with pytest.raises(ZkProvingError, match="finite"):
        prove(kit.v1, [float("nan")] * 64)
    with pytest.raises(ZkSetupError, match="not an ONNX model"):
        CircuitSetup.build("digits", 1, "hashed", b"junk", kit.srs, tmp_path)
    with pytest.raises(ZkSetupError, match="input mode"):
        CircuitSetup.build("digits", 1, "public", b"junk", kit.srs, tmp_path)


# One larger SRS serving a smaller circuit (the basis for pinning one SRS) is tested end to end on a real localnet:
# tests/integration/test_zk_localnet.py proves and verifies a 2^15-row circuit with the net's 2^17 SRS.
