"""ecdsa-sd-2023 verifier against the W3C spec's own vectors (w3c/vc-di-ecdsa @ 00781de5, see fixtures README)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from fedledger.abci_app.did.didkey import b58encode
from fedledger.abci_app.did.ecdsa_sd import SDProofError, UnknownContextError, create_verify_data, verify_derived
from fedledger.abci_app.did.ecdsa_sd.multikey import decode_p256_public, decode_p256_secret, encode_p256_public
from fedledger.abci_app.did.ecdsa_sd.proofvalue import decode_base, decode_derived, encode_base, encode_derived

FX = Path(__file__).parent / "fixtures" / "ecdsa_sd"
EMPLOY = FX / "employ"
SETS = ["employ", "prc"]


def _load(name: str) -> Any:
    return json.loads((EMPLOY / name).read_text())


@pytest.mark.parametrize("name", SETS)
def test_both_vector_sets_verify_with_every_intermediate(name: str) -> None:
    folder = FX / name
    revealed = json.loads((folder / "derivedRevealDocument.json").read_text())
    data = create_verify_data(revealed)
    want = json.loads((folder / "verifyCreateVerifyData.json").read_text())
    assert list(data.nquads) == json.loads((folder / "verifyNQuads.json").read_text())
    assert (data.proof_hash.hex(), data.mandatory_hash.hex()) == (want["proofHash"], want["mandatoryHash"])
    assert list(data.non_mandatory) == want["nonMandatory"]
    verify_derived(revealed)


@pytest.fixture(scope="module")
def revealed() -> dict[str, Any]:
    return dict(_load("derivedRevealDocument.json"))


def test_create_verify_data_matches_every_intermediate_vector(revealed: dict[str, Any]) -> None:
    data = create_verify_data(revealed)
    want = _load("verifyCreateVerifyData.json")
    assert list(data.nquads) == _load("verifyNQuads.json")
    assert data.proof_hash.hex() == want["proofHash"]
    assert data.mandatory_hash.hex() == want["mandatoryHash"]
    assert list(data.non_mandatory) == want["nonMandatory"]
    assert data.base_signature.hex() == want["baseSignature"]
    assert [s.hex() for s in data.signatures] == want["signatures"]
    assert "z" + b58encode(data.public_key) == want["publicKey"]


def test_derived_proof_value_round_trips_and_matches_vector(revealed: dict[str, Any]) -> None:
    parsed = decode_derived(revealed["proof"]["proofValue"])
    want = _load("verifyDerivedProofValue.json")
    assert parsed.base_signature.hex() == want["baseSignature"]
    assert dict(want["labelMap"]) == parsed.label_map
    assert (
        list(parsed.mandatory_indexes)
        == want["mandatoryIndexes"]
        == _load("derivedAdjMandatoryIndexes.json")["adjMandatoryIndexes"]
    )
    assert encode_derived(parsed) == revealed["proof"]["proofValue"]


def test_base_proof_value_round_trips() -> None:
    signed = _load("addSignedSDBase.json")
    parsed = decode_base(signed["proof"]["proofValue"])
    keys = json.loads((FX / "SDKeyMaterial.json").read_text())
    assert parsed.hmac_key.hex().upper() == keys["hmacKeyString"]
    assert list(parsed.mandatory_pointers) == json.loads((FX / "employMandatory.json").read_text())
    assert encode_base(parsed) == signed["proof"]["proofValue"]


def test_multikeys_of_the_vectors_parse_and_pair() -> None:
    keys = json.loads((FX / "SDKeyMaterial.json").read_text())
    for pair in ("baseKeyPair", "proofKeyPair"):
        secret = decode_p256_secret(keys[pair]["secretKeyMultibase"])
        assert encode_p256_public(secret.public_key()) == keys[pair]["publicKeyMultibase"]
        assert (
            encode_p256_public(decode_p256_public(keys[pair]["publicKeyMultibase"])) == keys[pair]["publicKeyMultibase"]
        )


def test_spec_derived_credential_verifies(revealed: dict[str, Any]) -> None:
    result = verify_derived(revealed)
    assert result.issuer_did == "did:key:zDnaepBuvsQ8cpsWrVKw8fbpGpvPeNSjVPTWoq6cRqaYzBKVP"
    assert len(result.nquads) == 10


def test_tampered_disclosed_statement_is_refused(revealed: dict[str, Any]) -> None:
    doc = copy.deepcopy(revealed)
    doc["credentialSubject"]["birthCountry"] = "Canada"
    # A changed literal can also change RDFC-1.0's blank-node numbering, so either check may fire first.
    with pytest.raises(SDProofError, match="does not cover"):
        verify_derived(doc)


def test_dropped_mandatory_statement_is_refused(revealed: dict[str, Any]) -> None:
    doc = copy.deepcopy(revealed)
    del doc["issuer"]["image"]  # /issuer is mandatory: its image quad is index 0
    with pytest.raises(SDProofError):
        verify_derived(doc)


def test_tampered_proof_option_is_refused(revealed: dict[str, Any]) -> None:
    doc = copy.deepcopy(revealed)
    doc["proof"]["created"] = "2024-01-01T00:00:00Z"
    with pytest.raises(SDProofError, match="base signature"):
        verify_derived(doc)


def test_other_issuer_key_is_refused(revealed: dict[str, Any]) -> None:
    doc = copy.deepcopy(revealed)
    other = "zDnaeTHfhmSaQKBc7CmdL3K7oYg3D6SC7yowe2eBeVd2DH32r"
    doc["proof"]["verificationMethod"] = f"did:key:{other}#{other}"
    with pytest.raises(SDProofError, match="base signature"):
        verify_derived(doc)


def test_flipped_signature_byte_is_refused(revealed: dict[str, Any]) -> None:
    parsed = decode_derived(revealed["proof"]["proofValue"])
    sigs = list(parsed.signatures)
    sigs[2] = bytes([sigs[2][0] ^ 1]) + sigs[2][1:]
    bad = dataclasses.replace(parsed, signatures=tuple(sigs))
    doc = copy.deepcopy(revealed)
    doc["proof"]["proofValue"] = encode_derived(bad)
    with pytest.raises(SDProofError, match="signature 2"):
        verify_derived(doc)


def test_unknown_context_is_a_clear_error_not_a_fetch(revealed: dict[str, Any]) -> None:
    doc = copy.deepcopy(revealed)
    doc["@context"] = [*doc["@context"], "https://example.invalid/ctx"]
    with pytest.raises(UnknownContextError, match="not bundled"):
        verify_derived(doc)


@pytest.mark.parametrize("value", ["", "zabc", "u", "uAAAA", "u2V0AhA", 5])
def test_malformed_proof_values_are_refused(revealed: dict[str, Any], value: object) -> None:
    doc = copy.deepcopy(revealed)
    doc["proof"]["proofValue"] = value
    with pytest.raises(SDProofError):
        verify_derived(doc)


def test_many_blank_nodes_are_refused_before_canonicalization(revealed: dict[str, Any]) -> None:
    # Factorial worst case of RDFC-1.0 on indistinguishable blank nodes: the verifier never starts it.
    doc = copy.deepcopy(revealed)
    doc["credentialSubject"] = [{"type": "Person"} for _ in range(40)]
    with pytest.raises(SDProofError, match="blank nodes; at most 16"):
        verify_derived(doc)


@pytest.mark.parametrize("bad", [{"@id": 5}, {"@context": 7}, {"@type": {"x": 1}}])
def test_invalid_json_ld_is_a_clear_refusal(revealed: dict[str, Any], bad: dict[str, Any]) -> None:
    doc = copy.deepcopy(revealed)
    doc["credentialSubject"].update(bad)
    with pytest.raises(SDProofError):
        verify_derived(doc)
