"""ecdsa-sd-2023 issuer base proof and holder derive, byte for byte against the W3C vectors (see fixtures README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fedledger.abci_app.did.ecdsa_sd import SDProofError, verify_derived
from fedledger.abci_app.did.ecdsa_sd.multikey import decode_p256_secret
from fedledger.sdk.vc import SelectionError, create_base_proof, derive_proof, select_json_ld
from fedledger.sdk.vc.selection import canonicalize_and_group, hmac_label_map_factory

FX = Path(__file__).parent / "fixtures" / "ecdsa_sd"


def _load(name: str) -> Any:
    return json.loads((FX / name).read_text())


KEYS = _load("SDKeyMaterial.json")
MANDATORY = _load("employMandatory.json")
SELECTIVE = _load("employSelective.json")


def _base() -> dict[str, Any]:
    return create_base_proof(
        _load("employmentAuth.json"),
        decode_p256_secret(KEYS["baseKeyPair"]["secretKeyMultibase"]),
        MANDATORY,
        created="2023-08-15T23:36:38Z",
        proof_key=decode_p256_secret(KEYS["proofKeyPair"]["secretKeyMultibase"]),
        hmac_key=bytes.fromhex(KEYS["hmacKeyString"]),
    )


def test_hmac_canonical_quads_and_mandatory_grouping_match_vectors() -> None:
    transform = _load("employ/addBaseTransform.json")
    grouped = canonicalize_and_group(
        _load("employmentAuth.json"),
        hmac_label_map_factory(bytes.fromhex(transform["hmacKeyString"])),
        {"mandatory": transform["mandatoryPointers"]},
    )
    assert list(grouped.nquads) == _load("employ/addBaseDocHMACCanon.json")
    group = grouped.groups["mandatory"]
    assert [[i, q] for i, q in group.matching.items()] == transform["mandatory"]["value"]
    assert [[i, q] for i, q in group.non_matching.items()] == transform["nonMandatory"]["value"]


def test_pointer_values_match_vector() -> None:
    for entry in _load("employ/addPointerValues.json"):
        selected = select_json_ld([entry["pointer"]], _load("employmentAuth.json"))
        assert selected is not None and selected["issuer"] == entry["value"]


def test_base_proof_is_byte_for_byte_the_vector() -> None:
    # RFC 6979 signatures make the issuer's output reproducible from the vector's keys.
    assert _base() == _load("employ/addSignedSDBase.json")


def test_derived_unsigned_reveal_matches_vector() -> None:
    assert select_json_ld(MANDATORY + SELECTIVE, _load("employmentAuth.json")) == _load(
        "employ/derivedUnsignedReveal.json"
    )


def test_group_indexes_match_vector() -> None:
    grouped = canonicalize_and_group(
        _load("employmentAuth.json"),
        hmac_label_map_factory(bytes.fromhex(KEYS["hmacKeyString"])),
        {"mandatory": MANDATORY, "selective": SELECTIVE, "combined": MANDATORY + SELECTIVE},
    )
    want = _load("employ/derivedGroupIndexes.json")
    assert sorted(grouped.groups["combined"].matching) == want["combinedIndexes"]
    assert sorted(grouped.groups["mandatory"].matching) == want["mandatoryIndexes"]
    assert sorted(grouped.groups["mandatory"].non_matching) == want["nonMandatoryIndexes"]
    assert sorted(grouped.groups["selective"].matching) == want["selectiveIndexes"]


def test_derive_from_spec_base_is_byte_for_byte_the_vector() -> None:
    derived = derive_proof(_load("employ/addSignedSDBase.json"), SELECTIVE)
    assert derived == _load("employ/derivedRevealDocument.json")
    assert verify_derived(derived).issuer_did.endswith(KEYS["baseKeyPair"]["publicKeyMultibase"])


@pytest.mark.parametrize("name", ["employ", "prc"])
def test_both_vector_sets_base_and_derive_byte_for_byte(name: str) -> None:
    signed = _load(f"{name}/addSignedSDBase.json")
    # The input is the signed document without its proof: the prc set's top-level prCredUnsigned.json
    # at this commit has a reworded description (vector drift upstream), so it is not that set's input.
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    config = _load(f"{name}/addProofConfig.json")
    base = create_base_proof(
        unsigned,
        decode_p256_secret(KEYS["baseKeyPair"]["secretKeyMultibase"]),
        _load(f"{name}/addRawBaseSignatureInfo.json")["mandatoryPointers"],
        created=config["created"],
        proof_key=decode_p256_secret(KEYS["proofKeyPair"]["secretKeyMultibase"]),
        hmac_key=bytes.fromhex(KEYS["hmacKeyString"]),
    )
    assert base == signed
    selective = _load("employSelective.json" if name == "employ" else "prCredSelective.json")
    assert derive_proof(signed, selective) == _load(f"{name}/derivedRevealDocument.json")


def test_fresh_random_keys_round_trip_and_other_disclosures_verify() -> None:
    issuer = decode_p256_secret(KEYS["baseKeyPair"]["secretKeyMultibase"])
    secured = create_base_proof(_load("employmentAuth.json"), issuer, MANDATORY, created="2024-01-01T00:00:00Z")
    derived = derive_proof(secured, ["/credentialSubject/givenName", "/credentialSubject/familyName"])
    assert set(derived["credentialSubject"]) == {"type", "givenName", "familyName"}
    verify_derived(derived)
    derived["credentialSubject"]["givenName"] = "MALLORY"
    with pytest.raises(SDProofError):
        verify_derived(derived)


def test_pointer_to_nothing_is_a_clear_error() -> None:
    with pytest.raises(SelectionError, match="selects nothing"):
        derive_proof(_load("employ/addSignedSDBase.json"), ["/credentialSubject/shoeSize"])
