"""Signed HE requests and receipts, and the binary frame: what verifies, what is refused."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.sdk.he.errors import HEFormatError, HEIntegrityError, HEReceiptError
from fedledger.sdk.he.params import CKKS_PARAMS
from fedledger.sdk.he.records import (
    HERequest,
    decode_frame,
    encode_frame,
    parse_receipt,
    parse_request,
    sign_receipt,
    sign_request,
)

CLIENT, NODE = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()


def _request(stage: int = 0) -> HERequest:
    return sign_request(CLIENT, request_id="0f" * 16, model="mlp-digits-poly", version=2, stage=stage,
                        params=CKKS_PARAMS.label(), input_sha256="a" * 64, eval_context_sha256="b" * 64)


def test_params_label_and_depth() -> None:
    assert CKKS_PARAMS.label() == "ckks-8192-60-40-40-40-38-s40"
    assert CKKS_PARAMS.depth == 3 and sum(CKKS_PARAMS.coeff_mod_bit_sizes) <= 218


def test_a_signed_request_round_trips_and_a_changed_field_does_not_verify() -> None:
    req = _request()
    raw = {**req.unsigned(), "sig": req.sig}
    assert parse_request(raw) == req and req.client == did_from_private_key(CLIENT)
    with pytest.raises(HEIntegrityError, match="signature"):
        parse_request({**raw, "input_sha256": "c" * 64})
    with pytest.raises(HEFormatError, match="exactly the fields"):
        parse_request({**raw, "extra": 1})
    with pytest.raises(HEFormatError, match="version"):
        parse_request({**raw, "version": -1})
    assert _request(0).hash() != _request(1).hash()


def test_a_receipt_names_the_request_and_verifies() -> None:
    req = _request()
    receipt = sign_receipt(NODE, req, output_sha256="d" * 64)
    assert receipt.request_hash == req.hash() and receipt.node == did_from_private_key(NODE)
    assert parse_receipt(receipt.to_json()) == receipt
    with pytest.raises(HEReceiptError, match="signature"):
        parse_receipt({**receipt.to_json(), "output_sha256": "e" * 64})
    forged = sign_receipt(Ed25519PrivateKey.generate(), req, output_sha256="d" * 64)
    with pytest.raises(HEReceiptError, match="signature"):
        parse_receipt({**forged.to_json(), "node": receipt.node})


def test_frames_round_trip_and_refuse_bad_lengths() -> None:
    frame = decode_frame(encode_frame({"request": {"x": 1}}, b"ct", b"ctx"))
    assert (frame.header, frame.ciphertext, frame.context) == ({"request": {"x": 1}}, b"ct", b"ctx")
    assert decode_frame(encode_frame({}, b"ct")).context is None
    body = encode_frame({}, b"ct")
    for bad in (body + b"x", body[:-1], b"XXXXX" + body[5:], encode_frame({}, b"")):
        with pytest.raises(HEFormatError):
            decode_frame(bad)
