"""Identity library: RFC 8785 JCS, did:key, eddsa-jcs-2022 (W3C test vector), admission credentials and their CLI."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.abci_app.did import didkey, jcs, vc
from fedledger.abci_app.did.didkey import DIDKeyError
from fedledger.abci_app.did.jcs import JCSError, canonicalize
from fedledger.abci_app.did.vc import CredentialError, Reason, TimeFormatError
from fedledger.apps.identity_cli import did as did_group
from fedledger.apps.identity_cli import vc as vc_group
from fedledger.sdk.keys import KeyStore
from tests.errorcodes import exit_status_of

# --------------------------------------------------------------------------------------------------
# W3C "Data Integrity EdDSA Cryptosuites v1.0" (Recommendation, 2025), Appendix B.3
# "Representation: eddsa-jcs-2022", Examples 29-39 (w3c/vc-di-eddsa, transitions/2025/REC/index.html).
SPEC_PUBLIC_KEY = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
SPEC_SECRET_KEY = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
SPEC_CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"]
SPEC_CREDENTIAL = {
    "@context": SPEC_CONTEXT,
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
}
SPEC_CANONICAL_CREDENTIAL = (
    '{"@context":["https://www.w3.org/ns/credentials/v2","https://www.w3.org/ns/credentials/examples/v2"],'
    '"credentialSubject":{"alumniOf":"The School of Examples","id":"did:example:abcdefgh"},'
    '"description":"A minimum viable example of an Alumni Credential.",'
    '"id":"urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33","issuer":"https://vc.example/issuers/5678",'
    '"name":"Alumni Credential","type":["VerifiableCredential","AlumniCredential"],"validFrom":"2023-01-01T00:00:00Z"}'
)
SPEC_CREDENTIAL_HASH = "59b7cb6251b8991add1ce0bc83107e3db9dbbab5bd2c28f687db1a03abc92f19"
SPEC_VM = f"did:key:{SPEC_PUBLIC_KEY}#{SPEC_PUBLIC_KEY}"
SPEC_PROOF_OPTIONS = {
    "type": "DataIntegrityProof",
    "cryptosuite": "eddsa-jcs-2022",
    "created": "2023-02-24T23:36:38Z",
    "verificationMethod": SPEC_VM,
    "proofPurpose": "assertionMethod",
    "@context": SPEC_CONTEXT,
}
SPEC_CANONICAL_PROOF_OPTIONS = (
    '{"@context":["https://www.w3.org/ns/credentials/v2","https://www.w3.org/ns/credentials/examples/v2"],'
    '"created":"2023-02-24T23:36:38Z","cryptosuite":"eddsa-jcs-2022","proofPurpose":"assertionMethod",'
    '"type":"DataIntegrityProof","verificationMethod":"did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2'
    '#z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"}'
)
SPEC_PROOF_OPTIONS_HASH = "66ab154f5c2890a140cb8388a22a160454f80575f6eae09e5a097cabe539a1db"
SPEC_SIGNATURE_HEX = ("407cd12654b33d718ecbb99179a1506daaa849450bf3fc523cce3e1c96f8b803"
                      "51da3f253d725c6f00b07c9e5448d50b3ef78012b9ab54255116d069c6dd2808")
SPEC_PROOF_VALUE = "z2HnFSSPPBzR36zdDgK8PbEHeXbR56YF24jwMpt3R1eHXQzJDMWS93FCzpvJpwTWd3GAVFuUfjoJdcnTMuVor51aX"
SPEC_SIGNED = {**SPEC_CREDENTIAL, "proof": {**SPEC_PROOF_OPTIONS, "proofValue": SPEC_PROOF_VALUE}}


def spec_key() -> Ed25519PrivateKey:
    return didkey.decode_secret_key_multibase(SPEC_SECRET_KEY)


def test_spec_key_pair_and_its_did_key() -> None:
    key = spec_key()
    assert didkey.encode_public_key_multibase(key.public_key()) == SPEC_PUBLIC_KEY
    assert didkey.encode_secret_key_multibase(key) == SPEC_SECRET_KEY
    assert didkey.did_from_private_key(key) == f"did:key:{SPEC_PUBLIC_KEY}"
    assert didkey.verification_method_id(f"did:key:{SPEC_PUBLIC_KEY}") == SPEC_VM


def test_spec_vector_intermediate_values_byte_for_byte() -> None:
    canonical = canonicalize(SPEC_CREDENTIAL)
    assert canonical == SPEC_CANONICAL_CREDENTIAL.encode()
    assert hashlib.sha256(canonical).hexdigest() == SPEC_CREDENTIAL_HASH
    config = vc.proof_configuration(SPEC_PROOF_OPTIONS, SPEC_CREDENTIAL)
    assert config == SPEC_CANONICAL_PROOF_OPTIONS.encode()
    assert hashlib.sha256(config).hexdigest() == SPEC_PROOF_OPTIONS_HASH
    combined = vc.hash_data(canonical, config)
    assert combined.hex() == SPEC_PROOF_OPTIONS_HASH + SPEC_CREDENTIAL_HASH
    assert spec_key().sign(combined).hex() == SPEC_SIGNATURE_HEX
    assert "z" + didkey.b58encode(bytes.fromhex(SPEC_SIGNATURE_HEX)) == SPEC_PROOF_VALUE


def test_spec_vector_create_proof_reproduces_the_signed_credential() -> None:
    signed = vc.add_proof(SPEC_CREDENTIAL, spec_key(), SPEC_VM, created="2023-02-24T23:36:38Z")
    assert signed == SPEC_SIGNED
    # Same key order as the spec's Example 39, so the pretty-printed JSON matches too.
    assert list(signed["proof"]) == list(SPEC_SIGNED["proof"])


def test_spec_vector_verifies_and_its_tampered_forms_do_not() -> None:
    proof = vc.verify_proof(SPEC_SIGNED)
    assert proof.controller == f"did:key:{SPEC_PUBLIC_KEY}"
    assert proof.verification_method == SPEC_VM
    assert proof.created == vc.parse_time("2023-02-24T23:36:38Z")
    for path, value in [(("name",), "Alumni Credentia1"), (("credentialSubject", "alumniOf"), "Elsewhere"),
                        (("proof", "created"), "2023-02-24T23:36:39Z"),
                        (("proof", "proofValue"), SPEC_PROOF_VALUE[:-1] + "Y")]:
        tampered = _with(SPEC_SIGNED, path, value)
        with pytest.raises(CredentialError) as err:
            vc.verify_proof(tampered)
        assert err.value.reason is Reason.BAD_PROOF, path


# --------------------------------------------------------------------------------------------------
# RFC 8785
def test_rfc8785_sorting_example_uses_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33.
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
             "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
             "\u00f6": "Latin Small Letter O With Diaeresis"}
    out = canonicalize(value).decode()
    order = list(json.loads(out))  # json.loads keeps the document's member order
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert sorted(value) != order  # code-point order differs: the test can tell the two apart


def test_rfc8785_string_and_literal_example() -> None:
    # RFC 8785 section 3.2.2 (the number part of that example needs floats, which FedLedger refuses).
    value = json.loads('{"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
                       ' "literals": [null, true, false]}')
    expected = '{"literals":[null,true,false],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonicalize(value) == expected.encode("utf-8")


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (-0, "0"), (1, "1"), (-1, "-1"), (9007199254740991, "9007199254740991"),
    (-9007199254740991, "-9007199254740991"), (True, "true"), (False, "false"), (None, "null"),
    ("\u007f\u2028/é", '"\u007f\u2028/é"'), ("\x00\x08\t\n\x0b\x0c\r\x1f", '"\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f"'),
    ([], "[]"), ({}, "{}"), ((1, "a"), '[1,"a"]'),
    ({"b": [1, {"d": 1, "c": 2}], "a": None}, '{"a":null,"b":[1,{"c":2,"d":1}]}'),
])
def test_jcs_serializations(value: Any, text: str) -> None:
    assert canonicalize(value) == text.encode("utf-8")


@pytest.mark.parametrize(("value", "message"), [
    (1.5, "non-integer number"), (2.0, "non-integer number"), ({"a": [0.1]}, "non-integer number"),
    (2**53, "outside"), (-(2**53), "outside"), ("\ud800", "lone surrogate"), ({"\udc00": 1}, "lone surrogate"),
    ({1: "a"}, "not a string"), (b"x", "not a JSON value"), ({1, 2}, "not a JSON value"),
])
def test_jcs_refuses_what_it_cannot_represent(value: Any, message: str) -> None:
    with pytest.raises(JCSError, match=message):
        canonicalize(value)


def test_jcs_refuses_deep_nesting() -> None:
    deep: Any = 1
    for _ in range(jcs.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(JCSError, match="nested deeper"):
        canonicalize(deep)


@pytest.mark.parametrize(("text", "message"), [
    ('{"a": 1, "a": 2}', "duplicate object key"), ('{"a": 1.0}', "non-integer"), ('[1e3]', "non-integer"),
    ("[NaN]", "is not JSON"), ("[Infinity]", "is not JSON"), ("[9007199254740992]", "outside"),
    ("{", "not valid JSON"), ("", "not valid JSON"), ("[" * 100_000, "nested"), (b"\xff\xfe", "not UTF-8"),
    ('["\\ud800"]', "lone surrogate"), ("[" + "9" * 5000 + "]", "not acceptable JSON"),
])
def test_loads_refuses_unacceptable_json(text: str | bytes, message: str) -> None:
    with pytest.raises(JCSError, match=message):
        jcs.loads(text)


_json_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_json_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_json_values)
def test_jcs_round_trips_and_matches_python_json_for_bmp_keys(value: Any) -> None:
    out = canonicalize(value)
    assert jcs.loads(out) == value
    assert canonicalize(json.loads(out)) == out
    # Below U+D800 code-point and UTF-16 order agree, and Python's escaping is ECMAScript's,
    # so the standard library is an independent oracle there.
    if all(ord(ch) < 0xD800 for key in _all_keys(value) for ch in key):
        assert out == json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _all_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_keys(item)


# --------------------------------------------------------------------------------------------------
# did:key
def test_did_key_round_trip() -> None:
    key = Ed25519PrivateKey.generate()
    identifier = didkey.did_from_private_key(key)
    assert identifier.startswith("did:key:z6Mk")
    assert didkey.public_key_from_did(identifier).public_bytes_raw() == key.public_key().public_bytes_raw()
    assert didkey.did_from_public_key(didkey.public_key_from_did(identifier)) == identifier


def test_base58_round_trip_keeps_leading_zeros() -> None:
    for data in [b"", b"\0", b"\0\0\x01", b"\xff" * 40, bytes(range(34))]:
        assert didkey.b58decode(didkey.b58encode(data)) == data
    assert didkey.b58encode(b"\0\0\x01") == "112"
    with pytest.raises(DIDKeyError, match="base58"):
        didkey.b58decode("0OIl")


def test_did_document_is_a_valid_multikey_document() -> None:
    identifier = f"did:key:{SPEC_PUBLIC_KEY}"
    document = didkey.did_document(identifier)
    assert document["id"] == identifier
    assert document["verificationMethod"] == [{"id": SPEC_VM, "type": "Multikey", "controller": identifier,
                                               "publicKeyMultibase": SPEC_PUBLIC_KEY}]
    assert document["assertionMethod"] == [SPEC_VM]
    controller, key = didkey.resolve_verification_method(SPEC_VM)
    assert controller == identifier
    assert didkey.encode_public_key_multibase(key) == SPEC_PUBLIC_KEY


_X25519_DID = "did:key:z6LSbysY2xFMRpGMhb7tFTLMpeuPRaqaWM1yECx2AtzE3KCc"  # multicodec 0xec (X25519)
_SHORT_DID = "did:key:z" + didkey.b58encode(b"\xed\x01" + bytes(31))


@pytest.mark.parametrize(("did", "message"), [
    ("did:web:example.com", "not a did:key"), ("did:key:", "not a valid DID"), ("not a did", "not a valid DID"),
    ("did:key:f6Mk", "multibase base58btc"), ("did:key:z0OIl", "base58btc character"),
    (_X25519_DID, "not an Ed25519 public key"), (_SHORT_DID, "31 key bytes"),
    ("did:key:1:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2", "versioned"),
    ("did:key:z" + "2" * 300, "characters long"), (42, "not a valid DID"),
])
def test_bad_did_keys_are_refused(did: Any, message: str) -> None:
    with pytest.raises(DIDKeyError, match=message):
        didkey.public_key_from_did(did)


@pytest.mark.parametrize(("url", "message"), [
    (f"did:key:{SPEC_PUBLIC_KEY}", "not a DID URL"), (f"did:key:{SPEC_PUBLIC_KEY}#other", "not in the DID document"),
    (f"did:key:{SPEC_PUBLIC_KEY}/path#{SPEC_PUBLIC_KEY}", "must be did:key"),
    (f"did:key:{SPEC_PUBLIC_KEY}?q=1#{SPEC_PUBLIC_KEY}", "must be did:key"),
    (f"#{SPEC_PUBLIC_KEY}", "must be did:key"), ("https://vc.example/issuers/5678#key", "not a DID URL"),
    (f"did:web:example.com#{SPEC_PUBLIC_KEY}", "not a did:key"), (None, "must be a did:key URL"),
])
def test_unresolvable_verification_methods(url: Any, message: str) -> None:
    with pytest.raises(DIDKeyError, match=message):
        didkey.resolve_verification_method(url)


def test_verification_method_must_be_authorized_for_the_purpose() -> None:
    with pytest.raises(DIDKeyError, match="not authorized for keyAgreement"):
        didkey.resolve_verification_method(SPEC_VM, "keyAgreement")


def test_validate_did_uses_did_syntax() -> None:
    assert didkey.validate_did("did:example:abc") == "did:example:abc"
    for bad in ["did:Example:abc", "did:example:", "did:example:a b", "", None]:
        with pytest.raises(DIDKeyError):
            didkey.validate_did(bad)


# --------------------------------------------------------------------------------------------------
# times
@pytest.mark.parametrize(("text", "seconds"), [
    ("1970-01-01T00:00:00Z", 0), ("2023-02-24T23:36:38Z", 1677281798), ("2024-02-29T12:00:00.999999999Z", 1709208000),
    ("2024-02-29T13:30:00+01:30", 1709208000), ("2024-02-29T10:00:00-02:00", 1709208000),
    ("1969-12-31T23:59:59Z", -1),
])
def test_parse_time(text: str, seconds: int) -> None:
    assert vc.parse_time(text) == seconds


@pytest.mark.parametrize("text", ["2023-02-30T00:00:00Z", "2023-01-01T24:00:00Z", "2023-01-01T00:00:00",
                                  "2023-01-01 00:00:00Z", "2023-01-01T00:00:00Z\n", "2023-01-01T00:00:00+25:00",
                                  "2023-1-01T00:00:00Z", "٢٠٢٣-01-01T00:00:00Z", "", 1700000000, None])
def test_parse_time_refuses_bad_times(text: Any) -> None:
    with pytest.raises(TimeFormatError):
        vc.parse_time(text)


def test_format_time_round_trips() -> None:
    for seconds in [0, -1, 1677281798, 951782400, 253402300799]:
        assert vc.parse_time(vc.format_time(seconds)) == seconds
    assert vc.format_time(1677281798) == "2023-02-24T23:36:38Z"
    with pytest.raises(TimeFormatError):
        vc.format_time(253402300800)
    with pytest.raises(TimeFormatError):
        vc.format_time(True)


# --------------------------------------------------------------------------------------------------
# admission credentials
ISSUER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ISSUER = didkey.did_from_private_key(ISSUER_KEY)
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
OTHER = didkey.did_from_private_key(OTHER_KEY)
SUBJECT = didkey.did_from_private_key(Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34))))
FROM, UNTIL = "2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"
NOW = "2025-06-01T00:00:00Z"


def issue(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "issuer_key": ISSUER_KEY, "issuer_did": ISSUER, "subject_did": SUBJECT, "organization": "Acme Health",
        "role": "trainer", "tasks": ["digits", "mnist"], "valid_from": FROM, "valid_until": UNTIL,
        "credential_id": "urn:uuid:0b3aef56-d8ba-11ed-83dd-58172aaccc33",
    }
    args.update(overrides)
    return vc.issue_admission_credential(**args)


def _with(document: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _without(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def reason_of(document: Any, now: str | None = NOW, trusted: dict[str, str] | None = None, **kw: Any) -> Reason:
    with pytest.raises(CredentialError) as err:
        vc.verify_credential(document, now, trusted, **kw)
    assert str(err.value).startswith(err.value.reason.value + ": ")
    return err.value.reason


def test_issued_credential_shape() -> None:
    credential = issue(credential_status="urn:fedledger:revocation:acme#7")
    assert credential["@context"] == [vc.VC_CONTEXT_V2]
    assert credential["type"] == ["VerifiableCredential", "FedLedgerAdmissionCredential"]
    assert credential["issuer"] == ISSUER
    assert credential["credentialSubject"] == {"id": SUBJECT, "organization": "Acme Health", "role": "trainer",
                                               "tasks": ["digits", "mnist"]}
    assert credential["credentialStatus"] == {"id": "urn:fedledger:revocation:acme#7",
                                              "type": "FedLedgerRevocationEntry", "statusPurpose": "revocation"}
    proof = credential["proof"]
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-jcs-2022"
    assert proof["verificationMethod"] == didkey.verification_method_id(ISSUER)
    assert proof["proofPurpose"] == "assertionMethod" and proof["@context"] == [vc.VC_CONTEXT_V2]
    assert proof["created"] == FROM


def test_issue_then_verify_round_trip() -> None:
    credential = issue(credential_status="urn:fedledger:revocation:acme#7")
    claims = vc.verify_credential(credential, NOW, {ISSUER: "Acme Health"})
    assert claims == vc.VerifiedCredential(
        credential_id="urn:uuid:0b3aef56-d8ba-11ed-83dd-58172aaccc33", issuer=ISSUER, subject=SUBJECT,
        organization="Acme Health", role="trainer", tasks=("digits", "mnist"), valid_from=vc.parse_time(FROM),
        valid_until=vc.parse_time(UNTIL), status_id="urn:fedledger:revocation:acme#7",
        verification_method=didkey.verification_method_id(ISSUER))
    # Through JSON text and back, as the chain and the CLI receive it.
    assert vc.verify_credential(jcs.loads(json.dumps(credential)), NOW) == claims
    assert vc.verify_credential(credential, NOW, {ISSUER: vc.ANY_ORGANIZATION}, roles={"trainer"},
                                subject=SUBJECT) == claims
    assert claims.claims()["validUntil"] == UNTIL


def test_issuing_is_deterministic_and_normalizes_times() -> None:
    assert canonicalize(issue()) == canonicalize(issue())
    same = issue(valid_from="2025-01-01T01:00:00.5+01:00")
    assert same["validFrom"] == FROM and same == issue()


def test_validity_window_boundaries() -> None:
    credential = issue()
    assert vc.verify_credential(credential, FROM).valid_from == vc.parse_time(FROM)
    assert vc.verify_credential(credential, "2025-12-31T23:59:59Z").role == "trainer"
    assert reason_of(credential, UNTIL) is Reason.EXPIRED
    assert reason_of(credential, "2030-01-01T00:00:00Z") is Reason.EXPIRED
    assert reason_of(credential, "2024-12-31T23:59:59Z") is Reason.NOT_YET_VALID
    # No agreed time yet: the window is left to a later check, everything else still holds.
    assert vc.verify_credential(credential, None).subject == SUBJECT
    assert reason_of(_with(credential, ("credentialSubject", "role"), "auditor"), None) is Reason.BAD_PROOF


def test_bad_now_is_the_callers_error() -> None:
    with pytest.raises(TimeFormatError):
        vc.verify_credential(issue(), "yesterday")


@pytest.mark.parametrize(("path", "value"), [
    (("credentialSubject", "role"), "aggregator"), (("credentialSubject", "organization"), "Evil Corp"),
    (("credentialSubject", "tasks"), ["digits"]), (("credentialSubject", "id"), "did:example:mallory"),
    (("validUntil",), "2030-01-01T00:00:00Z"), (("id",), "urn:uuid:other"), (("name",), "added claim"),
    (("proof", "proofValue"), None), (("proof", "created"), "2025-01-01T00:00:01Z"),
    (("proof", "verificationMethod"), didkey.verification_method_id(OTHER)),
    (("proof", "cryptosuite"), "eddsa-rdfc-2022"), (("proof", "type"), "Ed25519Signature2020"),
    (("proof", "proofPurpose"), "authentication"), (("proof", "@context"), ["https://example.org/other"]),
    (("proof", "verificationMethod"), f"{ISSUER}#wrong"), (("proof", "extra"), "x"),
])
def test_every_tamper_is_a_bad_proof(path: tuple[str, ...], value: Any) -> None:
    credential = issue()
    if path == ("proof", "proofValue"):
        value = credential["proof"]["proofValue"][:-2] + ("11" if not credential["proof"]["proofValue"].endswith("11")
                                                          else "22")
    assert reason_of(_with(credential, path, value)) is Reason.BAD_PROOF


@pytest.mark.parametrize("proof_value", ["", "z", "m" + "A" * 86, "z0OIl", "z" + "2" * 40, "z" + "2" * 200, 12])
def test_unreadable_proof_values_are_bad_proofs(proof_value: Any) -> None:
    assert reason_of(_with(issue(), ("proof", "proofValue"), proof_value)) is Reason.BAD_PROOF


def test_removing_proof_options_is_a_bad_proof() -> None:
    credential = issue()
    for field in ["created", "verificationMethod", "proofValue", "type", "cryptosuite", "proofPurpose"]:
        assert reason_of(_without(credential, ("proof", field))) is Reason.BAD_PROOF, field
    # The proof's @context is optional: the proof configuration takes the document's @context
    # either way (3.3.5 step 4), so dropping it leaves the signed bytes, and the proof, intact.
    assert vc.verify_credential(_without(credential, ("proof", "@context")), NOW).issuer == ISSUER
    assert reason_of(_without(credential, ("proof",))) is Reason.BAD_PROOF


def test_wrong_key() -> None:
    # Signed by another key but naming the issuer's verification method: the signature fails.
    forged = vc.add_proof(_without(issue(), ("proof",)), OTHER_KEY, didkey.verification_method_id(ISSUER), created=FROM)
    assert reason_of(forged) is Reason.BAD_PROOF
    # Signed and named by another key while claiming the issuer: the proof is not the issuer's.
    impostor = vc.add_proof(_without(issue(), ("proof",)), OTHER_KEY, didkey.verification_method_id(OTHER),
                            created=FROM)
    vc.verify_proof(impostor)  # a sound proof ...
    assert reason_of(impostor) is Reason.BAD_PROOF  # ... by someone who is not the issuer


def test_trusted_issuers() -> None:
    other = issue(issuer_key=OTHER_KEY, issuer_did=OTHER)
    assert vc.verify_credential(other, NOW).issuer == OTHER
    assert reason_of(other, trusted={ISSUER: "*"}) is Reason.UNKNOWN_ISSUER
    assert reason_of(other, trusted={}) is Reason.UNKNOWN_ISSUER
    assert reason_of(issue(), trusted={ISSUER: "Other Org"}) is Reason.WRONG_ORGANIZATION


def test_roles_and_subject() -> None:
    assert set(vc.ROLES) == {"issuer", "trainer", "aggregator", "evaluator", "validator-admin", "auditor",
                              "inference"}
    assert "inference" not in vc.DEFAULT_ORG_ROLES  # genesis files written before inference keep their state
    assert reason_of(issue(role="auditor"), roles={"trainer", "aggregator"}) is Reason.WRONG_ROLE
    unknown_role = vc.add_proof(_with(_without(issue(), ("proof",)), ("credentialSubject", "role"), "admin"),
                                ISSUER_KEY, didkey.verification_method_id(ISSUER), created=FROM)
    assert reason_of(unknown_role) is Reason.WRONG_ROLE
    assert reason_of(issue(), subject=OTHER) is Reason.WRONG_SUBJECT


def _resigned(document: dict[str, Any]) -> dict[str, Any]:
    """A malformed credential with a sound proof, so only the shape check can refuse it."""
    return vc.add_proof(document, ISSUER_KEY, didkey.verification_method_id(ISSUER), created=FROM)


_UNSIGNED = {key: value for key, value in issue().items() if key != "proof"}


@pytest.mark.parametrize("document", [
    _resigned(_without(_UNSIGNED, ("validUntil",))), _resigned(_without(_UNSIGNED, ("validFrom",))),
    _resigned(_without(_UNSIGNED, ("id",))), _resigned(_without(_UNSIGNED, ("issuer",))),
    _resigned(_without(_UNSIGNED, ("credentialSubject",))), _resigned(_without(_UNSIGNED, ("type",))),
    _resigned(_with(_UNSIGNED, ("@context",), [vc.VC_CONTEXT_V2, "https://example.org/more"])),
    _resigned(_with(_UNSIGNED, ("@context",), "https://www.w3.org/2018/credentials/v1")),
    _resigned(_with(_UNSIGNED, ("type",), ["VerifiableCredential"])),
    _resigned(_with(_UNSIGNED, ("issuer",), "https://vc.example/issuers/5678")),
    _resigned(_with(_UNSIGNED, ("id",), "no-scheme")),
    _resigned(_with(_UNSIGNED, ("validFrom",), "2025-01-01")),
    _resigned(_with(_UNSIGNED, ("validUntil",), FROM)),
    _resigned(_with(_UNSIGNED, ("credentialSubject",), "did:example:x")),
    _resigned(_with(_UNSIGNED, ("credentialSubject", "id"), "mallory")),
    _resigned(_with(_UNSIGNED, ("credentialSubject", "organization"), "")),
    _resigned(_with(_UNSIGNED, ("credentialSubject", "role"), 3)),
    _resigned(_with(_UNSIGNED, ("credentialSubject", "tasks"), "digits")),
    _resigned(_with(_UNSIGNED, ("credentialSubject", "tasks"), ["digits", "digits"])),
    _resigned(_with(_UNSIGNED, ("credentialSubject", "tasks"), ["digits", 7])),
    _resigned(_with(_UNSIGNED, ("credentialStatus",), "urn:x")),
    _resigned(_with(_UNSIGNED, ("credentialStatus",), {"type": "FedLedgerRevocationEntry"})),
    _with(issue(), ("credentialSubject", "score"), 0.5),
    _with(issue(), ("proof",), [issue()["proof"]]),
    _with(issue(), ("proof", "created"), "yesterday"),
    [issue()], "credential", None,
])
def test_malformed_credentials(document: Any) -> None:
    assert reason_of(document) is Reason.MALFORMED


def test_issuer_may_be_an_object_with_an_id() -> None:
    document = _resigned(_with(_UNSIGNED, ("issuer",), {"id": ISSUER, "name": "Acme CA"}))
    assert vc.verify_credential(document, NOW).issuer == ISSUER


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"issuer_did": OTHER}, Reason.MALFORMED), ({"role": "root"}, Reason.WRONG_ROLE),
    ({"subject_did": "alice"}, Reason.MALFORMED), ({"organization": " "}, Reason.MALFORMED),
    ({"tasks": ["a", "a"]}, Reason.MALFORMED), ({"valid_until": FROM}, Reason.MALFORMED),
    ({"valid_from": "soon"}, Reason.MALFORMED), ({"credential_id": "id 1"}, Reason.MALFORMED),
])
def test_issue_refuses_bad_input(overrides: dict[str, Any], reason: Reason) -> None:
    with pytest.raises(CredentialError) as err:
        issue(**overrides)
    assert err.value.reason is reason


def test_add_proof_refuses_a_second_proof() -> None:
    with pytest.raises(CredentialError, match="proof sets"):
        vc.add_proof(issue(), ISSUER_KEY, didkey.verification_method_id(ISSUER))


# --------------------------------------------------------------------------------------------------
# CLI
@pytest.fixture
def run(tmp_path: Path) -> Any:
    @click.group()
    @click.pass_context
    def root(ctx: click.Context) -> None:
        ctx.obj = SimpleNamespace(home=tmp_path / "home")

    root.add_command(did_group)
    root.add_command(vc_group)
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(root, list(args), catch_exceptions=False)

    return invoke


def _one_error_line(result: Any) -> str:
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    printed = re.search(r" \[([A-Z0-9_]+)\]$", lines[0])
    assert printed is not None and result.exit_code == exit_status_of(printed.group(1)), (result.exit_code, lines)
    return str(lines[0])


def test_cli_did_create_and_show(run: Any, tmp_path: Path) -> None:
    created = run("did", "create", "alice")
    assert created.exit_code == 0
    identifier = created.stdout.strip()
    key = KeyStore(tmp_path / "home").load("alice")
    assert identifier == didkey.did_from_private_key(key.private)
    assert run("did", "create", "alice").stdout.strip() == identifier  # reuses the key
    assert run("did", "show", "alice").stdout.strip() == identifier
    document = json.loads(run("did", "show", "alice", "--document").stdout)
    assert document["id"] == identifier
    assert "no key named 'bob'" in _one_error_line(run("did", "show", "bob"))
    assert "invalid key name" in _one_error_line(run("did", "create", "../x"))


def test_cli_did_create_reuses_a_key_made_by_keys_create(run: Any, tmp_path: Path) -> None:
    key = KeyStore(tmp_path / "home").create("agg")
    assert run("did", "create", "agg").stdout.strip() == didkey.did_from_private_key(key.private)


def test_cli_issue_and_verify(run: Any, tmp_path: Path) -> None:
    subject = run("did", "create", "alice").stdout.strip()
    issuer = run("did", "create", "ca").stdout.strip()
    path = tmp_path / "alice.vc.json"
    issued = run("vc", "issue", "--issuer", "ca", "--subject", subject, "--org", "Acme", "--role", "trainer",
                 "--task", "digits", "--task", "mnist", "--valid-days", "30", "--id", "urn:uuid:1234",
                 "--out", str(path))
    assert issued.exit_code == 0, issued.output
    credential = json.loads(path.read_text())
    assert credential["issuer"] == issuer and credential["id"] == "urn:uuid:1234"
    assert vc.parse_time(credential["validUntil"]) - vc.parse_time(credential["validFrom"]) == 30 * 86400

    ok = run("vc", "verify", str(path))
    assert ok.exit_code == 0, ok.output
    assert f"subject: {subject}" in ok.stdout and "tasks: digits, mnist" in ok.stdout
    as_json = json.loads(run("vc", "verify", str(path), "--json", "--issuer", issuer).stdout)
    assert as_json["role"] == "trainer" and as_json["organization"] == "Acme"

    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(_with(credential, ("credentialSubject", "role"), "aggregator")))
    assert "BAD_PROOF" in _one_error_line(run("vc", "verify", str(tampered)))
    assert "UNKNOWN_ISSUER" in _one_error_line(run("vc", "verify", str(path), "--issuer", subject))
    assert "EXPIRED" in _one_error_line(run("vc", "verify", str(path), "--at", "2999-01-01T00:00:00Z"))
    assert "NOT_YET_VALID" in _one_error_line(run("vc", "verify", str(path), "--at", "2000-01-01T00:00:00Z"))
    assert "--at" in _one_error_line(run("vc", "verify", str(path), "--at", "tomorrow"))


def test_cli_issue_prints_to_stdout_and_refuses_bad_input(run: Any) -> None:
    subject = run("did", "create", "alice").stdout.strip()
    run("did", "create", "ca")
    printed = run("vc", "issue", "--issuer", "ca", "--subject", subject, "--org", "Acme", "--role", "auditor")
    assert printed.exit_code == 0
    credential = json.loads(printed.stdout)
    assert credential["credentialSubject"]["tasks"] == [] and credential["id"].startswith("urn:uuid:")
    assert "MALFORMED" in _one_error_line(run("vc", "issue", "--issuer", "ca", "--subject", "alice", "--org", "Acme",
                                              "--role", "trainer"))
    assert "no key named" in _one_error_line(run("vc", "issue", "--issuer", "nobody", "--subject", subject,
                                                 "--org", "Acme", "--role", "trainer"))
    bad_role = run("vc", "issue", "--issuer", "ca", "--subject", subject, "--org", "Acme", "--role", "root")
    assert bad_role.exit_code == 2  # click's usage error lists the roles


def test_cli_verify_garbage(run: Any, tmp_path: Path) -> None:
    for name, content in [("garbage", b"\x00not json"), ("array", b"[1, 2]"), ("dup", b'{"a": 1, "a": 1}'),
                          ("float", b'{"a": 0.5}'), ("empty", b"")]:
        path = tmp_path / name
        path.write_bytes(content)
        assert "MALFORMED" in _one_error_line(run("vc", "verify", str(path))), name
    assert "cannot read" in _one_error_line(run("vc", "verify", str(tmp_path / "missing.json")))
