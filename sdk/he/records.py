"""Signed HE stage requests (client), signed stage receipts (node), and the binary frame both travel in.

A frame is: magic b"FLHE1", a 4-byte big-endian header length, the header (canonical JSON), then
the ciphertext and, optionally, the evaluation context; the header gives their lengths. Binary,
not JSON: a ciphertext is ~400 KB and the context ~53 MB, and base64 would add a third.

The client signs each stage request with its DID key over (request id, model, version, stage,
input ciphertext sha256, evaluation context sha256, CKKS parameter label). The node signs a
receipt over (request hash, input ciphertext sha256, output ciphertext sha256, evaluation context
sha256, model, version, stage) with its DID key, so the client, and later the chain, can see who
computed what on which ciphertext.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.didkey import DIDKeyError, did_from_private_key, public_key_from_did
from fedledger.abci_app.errors import TxError
from fedledger.abci_app.modules.inference.he_receipts import (
    RECEIPT_DOMAIN,
    HEReceipt,
    parse_he_receipt,
    receipt_signing_bytes,
)
from fedledger.sdk.he.errors import HEFormatError, HEIntegrityError, HEReceiptError

__all__ = [
    "MAGIC", "RECEIPT_DOMAIN", "REQUEST_DOMAIN", "Frame", "HEReceipt", "HERequest", "decode_frame",
    "encode_frame", "parse_receipt", "parse_request", "sign_receipt", "sign_request",
]

MAGIC = b"FLHE1"
REQUEST_DOMAIN = b"fedledger/he-request/v1\n"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PARAMS = re.compile(r"ckks-[0-9a-z-]{1,120}")
_SIG = re.compile(r"[0-9a-f]{128}")
_MAX_HEADER = 64 << 10


@dataclass(frozen=True)
class HERequest:
    """A client's signed request for one stage."""

    request_id: str  # 32 hex chars, one per inference, shared by its stages
    model: str
    version: int
    stage: int
    params: str  # CKKSParams.label()
    input_sha256: str
    eval_context_sha256: str
    client: str  # the client's did:key
    sig: str

    def unsigned(self) -> dict[str, Any]:
        """Every field but sig."""
        fields = asdict(self)
        del fields["sig"]
        return fields

    def hash(self) -> str:
        """sha256 hex of the signed request's canonical JSON: what a receipt names."""
        return hashlib.sha256(canonical_bytes(asdict(self))).hexdigest()


def _field(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise HEFormatError(f"field {name!r} is missing or malformed")
    return value


def _int(raw: Mapping[str, Any], name: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 31:
        raise HEFormatError(f"field {name!r} must be a non-negative int")
    return value


def _did(raw: Mapping[str, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str):
        raise HEFormatError(f"field {name!r} must be a did:key")
    try:
        public_key_from_did(value)
    except DIDKeyError as exc:
        raise HEFormatError(f"field {name!r}: {exc}") from None
    return value


def _verify(did: str, sig: str, message: bytes, error: type[HEIntegrityError] | type[HEReceiptError],
            what: str) -> None:
    try:
        public_key_from_did(did).verify(bytes.fromhex(sig), message)
    except InvalidSignature:
        raise error(f"{what} signature does not verify for {did}") from None


def sign_request(key: Ed25519PrivateKey, *, request_id: str, model: str, version: int, stage: int, params: str,
                 input_sha256: str, eval_context_sha256: str) -> HERequest:
    """The client's signed request for one stage (validated by parse_request before it is returned)."""
    unsigned: dict[str, Any] = {
        "request_id": request_id, "model": model, "version": version, "stage": stage, "params": params,
        "input_sha256": input_sha256, "eval_context_sha256": eval_context_sha256, "client": did_from_private_key(key),
    }
    sig = key.sign(REQUEST_DOMAIN + canonical_bytes(unsigned)).hex()
    return parse_request({**unsigned, "sig": sig})


def parse_request(raw: Any) -> HERequest:
    """Validate a request's fields and its signature (HEFormatError if malformed, HEIntegrityError if forged)."""
    if not isinstance(raw, Mapping) or set(raw) != set(HERequest.__dataclass_fields__):
        raise HEFormatError(f"a request has exactly the fields {sorted(HERequest.__dataclass_fields__)}")
    request = HERequest(
        request_id=_field(raw, "request_id", _REQUEST_ID), model=_field(raw, "model", _NAME),
        version=_int(raw, "version"), stage=_int(raw, "stage"), params=_field(raw, "params", _PARAMS),
        input_sha256=_field(raw, "input_sha256", _HEX64),
        eval_context_sha256=_field(raw, "eval_context_sha256", _HEX64), client=_did(raw, "client"),
        sig=_field(raw, "sig", _SIG))
    _verify(request.client, request.sig, REQUEST_DOMAIN + canonical_bytes(request.unsigned()), HEIntegrityError,
            "request")
    return request


def sign_receipt(key: Ed25519PrivateKey, request: HERequest, output_sha256: str, node: str | None = None) -> HEReceipt:
    """The node's signed receipt for having evaluated request's stage into the output ciphertext."""
    unsigned: dict[str, Any] = {
        "request_hash": request.hash(), "request_id": request.request_id, "model": request.model,
        "version": request.version, "stage": request.stage, "input_sha256": request.input_sha256,
        "output_sha256": output_sha256, "eval_context_sha256": request.eval_context_sha256,
        "node": node or did_from_private_key(key),
    }
    sig = key.sign(receipt_signing_bytes(unsigned)).hex()
    return HEReceipt(**unsigned, sig=sig)


def parse_receipt(raw: Any) -> HEReceipt:
    """Validate a receipt's fields and its signature (HEReceiptError if either is wrong): the chain's own check."""
    try:
        return parse_he_receipt(raw)
    except TxError as exc:
        raise HEReceiptError(f"malformed or forged receipt: {exc.log}") from None


@dataclass(frozen=True, eq=False)
class Frame:
    """A decoded frame: its JSON header (without the length fields), the ciphertext, and the context if carried."""

    header: dict[str, Any]
    ciphertext: bytes
    context: bytes | None = None


def encode_frame(header: Mapping[str, Any], ciphertext: bytes, context: bytes | None = None) -> bytes:
    """Frame header, ciphertext and optional context (see the module docstring)."""
    full = {**header, "ciphertext_len": len(ciphertext), "context_len": len(context) if context is not None else 0}
    head = canonical_bytes(full)
    return b"".join([MAGIC, struct.pack(">I", len(head)), head, ciphertext, context or b""])


def decode_frame(body: bytes) -> Frame:
    """Split a frame; HEFormatError for anything that is not exactly one well-formed frame."""
    if len(body) < len(MAGIC) + 4 or not body.startswith(MAGIC):
        raise HEFormatError("body is not an HE frame (expected the FLHE1 magic)")
    (head_len,) = struct.unpack(">I", body[len(MAGIC): len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if head_len > _MAX_HEADER or start + head_len > len(body):
        raise HEFormatError("frame header length is out of range")
    try:
        header = json.loads(body[start: start + head_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HEFormatError("frame header is not JSON") from None
    if not isinstance(header, dict):
        raise HEFormatError("frame header must be a JSON object")
    ct_len, ctx_len = header.pop("ciphertext_len", None), header.pop("context_len", None)
    for name, value in (("ciphertext_len", ct_len), ("context_len", ctx_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise HEFormatError(f"frame header {name} must be a non-negative int")
    assert isinstance(ct_len, int) and isinstance(ctx_len, int)
    rest = body[start + head_len:]
    if len(rest) != ct_len + ctx_len or ct_len == 0:
        raise HEFormatError(f"frame carries {len(rest)} bytes after the header, its header says {ct_len + ctx_len}")
    return Frame(header=header, ciphertext=rest[:ct_len], context=rest[ct_len:] if ctx_len else None)
