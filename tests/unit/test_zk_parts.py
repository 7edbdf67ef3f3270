"""The zk module's pure parts without proving: field-element decoding, settings checks, tx body parsing, SRS files."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.zk import verifier
from fedledger.abci_app.modules.zk.circuit import CircuitFacts, circuit_facts, input_visibility
from fedledger.abci_app.modules.zk.instances import FIELD_MODULUS, decode_instances, felt_to_signed, felt_value
from fedledger.abci_app.modules.zk.msgs import RegisterZkCircuit, SubmitInferenceProof
from fedledger.bench.zk import upsample_digits
from fedledger.sdk.zk.errors import ZkSRSError
from fedledger.sdk.zk.proof import Proof
from fedledger.sdk.zk.setup import canonical_settings
from fedledger.sdk.zk.srs import load_srs
from fedledger.sdk.zk.submission import signed_proof_body

KEY = Ed25519PrivateKey.from_private_bytes(b"\x05" * 32)


def le(value: int) -> str:
    return (value % FIELD_MODULUS).to_bytes(32, "little").hex()


def settings(**run: Any) -> bytes:
    doc = {"version": "23.0.5", "model_instance_shapes": [[1, 10]], "model_output_scales": [13],
           "run_args": {"param_visibility": "Fixed", "output_visibility": "Public",
                        "input_visibility": input_visibility("hashed"), "logrows": 15, **run}}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_field_elements_decode_to_signed_ints() -> None:
    assert felt_value(le(1663)) == 1663 and felt_to_signed(felt_value(le(-5))) == -5
    facts = CircuitFacts(logrows=15, outputs=2, output_scale=13, hashed=True)
    h, outs = decode_instances([le(7), le(3), le(-2)], facts)
    assert h == "0x" + "0" * 63 + "7" and outs == [3, -2]
    with pytest.raises(TxError) as info:
        decode_instances([le(3), le(-2)], facts)
    assert info.value.code == Code.ZK_PROOF_INVALID
    with pytest.raises(TxError):
        felt_value((FIELD_MODULUS).to_bytes(32, "little").hex())  # not reduced
    with pytest.raises(TxError):
        felt_value("zz" * 32)


def test_circuit_facts_and_their_refusals() -> None:
    facts = circuit_facts(settings(), "hashed")
    assert (facts.logrows, facts.outputs, facts.output_scale, facts.hashed) == (15, 10, 13, True)
    cases: list[tuple[bytes, str, Code]] = [
        (settings(param_visibility="Private"), "hashed", Code.ZK_CIRCUIT),
        (settings(output_visibility="Private"), "hashed", Code.ZK_CIRCUIT),
        (settings(), "private", Code.ZK_CIRCUIT),
        (settings(logrows=40), "hashed", Code.ZK_CIRCUIT),
        (settings().replace(b"23.0.5", b"22.0.1"), "hashed", Code.ZK_VERSION_MISMATCH),
        (b"not json", "hashed", Code.ZK_CIRCUIT),
        (json.dumps(json.loads(settings()), indent=1).encode(), "hashed", Code.ZK_CIRCUIT),  # not canonical
    ]
    for raw, mode, code in cases:
        with pytest.raises(TxError) as info:
            circuit_facts(raw, mode)
        assert info.value.code == code, (raw[:60], info.value.log)


def test_canonical_settings_drop_the_timestamp_and_sort() -> None:
    raw = b'{"timestamp": 123, "b": 1, "a": {"z": 1, "y": 2}, "required_range_checks": [[0, 9], [-1, 1]]}'
    assert canonical_settings(raw) == b'{"a":{"y":2,"z":1},"b":1,"required_range_checks":[[-1,1],[0,9]]}'


def test_register_body_parsing_bounds_the_vk() -> None:
    body = {"task_id": "t", "version": 1, "input_mode": "hashed",
            "settings": base64.b64encode(zlib.compress(b"{}")).decode(),
            "vk": base64.b64encode(zlib.compress(b"vk" * 100)).decode()}
    assert RegisterZkCircuit.parse(body).vk == b"vk" * 100 and RegisterZkCircuit.parse(body).settings == b"{}"
    bomb = base64.b64encode(zlib.compress(b"\0" * (5 << 20))).decode()  # inflates past the 4 MiB ceiling
    for bad in ({"vk": bomb}, {"vk": base64.b64encode(b"plain").decode()}, {"input_mode": "open"},
                {"settings": "***"}):
        with pytest.raises(TxError) as info:
            RegisterZkCircuit.parse({**body, **bad})
        assert info.value.code == Code.INVALID_BODY


def test_submit_body_checks_the_node_signature() -> None:
    proof = Proof(proof=b"\x01" * 64, instances=(le(1), le(2)), input_hash=None, outputs=(2,), output_scale=13)
    body = signed_proof_body(KEY, proof, task_id="t", version=1, request_id="r", input_mode="hashed")
    msg = SubmitInferenceProof.parse(body)
    assert msg.node == did_from_private_key(KEY)
    for bad, code in (({"request_id": "r2"}, Code.BAD_SIGNATURE), ({"version": 2}, Code.BAD_SIGNATURE),
                      ({"instances": [le(1), le(3)]}, Code.BAD_SIGNATURE), ({"proof": ""}, Code.INVALID_BODY),
                      ({"instances": ["xyz"]}, Code.INVALID_BODY), ({"node": "did:web:x"}, Code.INVALID_BODY)):
        with pytest.raises(TxError) as info:
            SubmitInferenceProof.parse({**body, **bad})
        assert info.value.code == code, bad


def test_srs_files_are_checked_by_hash(tmp_path: Path) -> None:
    path = tmp_path / "srs"
    path.write_bytes(b"not really an srs")
    srs = load_srs(path, 15)
    assert load_srs(path, 15, srs.sha256) == srs
    with pytest.raises(ZkSRSError, match="expected"):
        load_srs(path, 15, "0" * 64)
    with pytest.raises(ZkSRSError, match="does not exist"):
        load_srs(tmp_path / "missing", 15)
    v = verifier.configure(path)
    try:
        assert v is not None and v.srs_sha256 == srs.sha256
        with pytest.raises(RuntimeError, match="chain pins"):
            verifier.check_pinned("1" * 64)
    finally:
        verifier.configure(None)


def test_upsampled_digits_fit_cnn_mnist() -> None:
    import numpy as np

    x = np.arange(64, dtype=np.float32).reshape(1, 64)
    big = upsample_digits(x).reshape(28, 28)
    assert big[2, 2] == 0 and big[4, 4] == 0 and big[5, 5] == 9 and big[0].sum() == 0
