"""CBOR proofValue encodings of ecdsa-sd-2023: base (tag 0xd95d00) and derived (tag 0xd95d01), multibase 'u'."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import cbor2

from fedledger.abci_app.errors import ConfigError

__all__ = [
    "BaseProof",
    "DerivedProof",
    "ProofValueError",
    "decode_base",
    "decode_derived",
    "encode_base",
    "encode_derived",
    "b64url",
    "b64url_decode",
]

BASE_HEADER = b"\xd9\x5d\x00"
DERIVED_HEADER = b"\xd9\x5d\x01"
MAX_PROOF_VALUE = 64 * 1024  # characters; a tx is capped well below this anyway


class ProofValueError(ConfigError):
    """A proofValue that is not a well-formed ecdsa-sd-2023 base or derived proof."""

    error_code = "SD_PROOF_MALFORMED"


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding; refuses padding and non-alphabet characters."""
    if "=" in text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ProofValueError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ProofValueError(f"not base64url: {exc}") from exc
    if b64url(data) != text:  # non-canonical trailing bits
        raise ProofValueError("non-canonical base64url")
    return data


@dataclass(frozen=True)
class BaseProof:
    """Decoded base proofValue: what the issuer hands the holder."""

    base_signature: bytes
    public_key: bytes  # ephemeral P-256 Multikey bytes (35)
    hmac_key: bytes
    signatures: tuple[bytes, ...]
    mandatory_pointers: tuple[str, ...]


@dataclass(frozen=True)
class DerivedProof:
    """Decoded derived proofValue: what a verifier checks."""

    base_signature: bytes
    public_key: bytes
    signatures: tuple[bytes, ...]
    label_map: dict[str, str]  # c14nN -> 'u' + base64url(HMAC)
    mandatory_indexes: tuple[int, ...]


def _unwrap(value: object, header: bytes, what: str) -> list[object]:
    if not isinstance(value, str) or not value.startswith("u") or len(value) > MAX_PROOF_VALUE:
        raise ProofValueError(f"{what} proofValue must be a multibase base64url ('u...') string")
    raw = b64url_decode(value[1:])
    if raw[:3] != header:
        raise ProofValueError(f"{what} proofValue must start with CBOR header {header.hex()}")
    try:
        decoded = cbor2.loads(raw[3:])
    except Exception as exc:  # cbor2 raises several types on garbage; all mean malformed
        raise ProofValueError(f"{what} proofValue is not CBOR: {exc}") from exc
    if not isinstance(decoded, list):
        raise ProofValueError(f"{what} proofValue must be a CBOR array")
    return decoded


def _sigs(value: object) -> tuple[bytes, ...]:
    if not isinstance(value, list) or not all(isinstance(s, bytes) and len(s) == 64 for s in value):
        raise ProofValueError("signatures must be an array of 64-byte P-256 signatures")
    return tuple(value)


def decode_base(value: object) -> BaseProof:
    """Parse a base proofValue."""
    parts = _unwrap(value, BASE_HEADER, "base")
    if len(parts) != 5:
        raise ProofValueError("base proof must have 5 components")
    sig, pub, hmac_key, sigs, pointers = parts
    if not (isinstance(sig, bytes) and len(sig) == 64 and isinstance(pub, bytes) and isinstance(hmac_key, bytes)):
        raise ProofValueError("base proof: bad signature, public key or HMAC key")
    if len(hmac_key) != 32:
        raise ProofValueError("base proof: HMAC key must be 32 bytes")
    if not isinstance(pointers, list) or not all(isinstance(p, str) for p in pointers):
        raise ProofValueError("base proof: mandatory pointers must be strings")
    return BaseProof(sig, pub, hmac_key, _sigs(sigs), tuple(pointers))


def encode_base(proof: BaseProof) -> str:
    """Serialize a base proofValue."""
    body = cbor2.dumps(
        [proof.base_signature, proof.public_key, proof.hmac_key, list(proof.signatures), list(proof.mandatory_pointers)]
    )
    return "u" + b64url(BASE_HEADER + body)


def _is_index(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def decode_derived(value: object) -> DerivedProof:
    """Parse a derived proofValue; the compressed label map {int: 32 bytes} becomes {c14nN: u<b64url>}."""
    parts = _unwrap(value, DERIVED_HEADER, "derived")
    if len(parts) != 5:
        raise ProofValueError("derived proof must have 5 components")
    sig, pub, sigs, compressed, indexes = parts
    if not (isinstance(sig, bytes) and len(sig) == 64 and isinstance(pub, bytes)):
        raise ProofValueError("derived proof: bad base signature or public key")
    if not isinstance(compressed, dict):
        raise ProofValueError("derived proof: label map must be a CBOR map")
    label_map: dict[str, str] = {}
    for key in sorted(compressed, key=lambda k: (not isinstance(k, int), k if isinstance(k, int) else 0)):
        label = compressed[key]
        if isinstance(key, bool) or not isinstance(key, int) or key < 0 or not isinstance(label, bytes):
            raise ProofValueError("derived proof: label map must map non-negative ints to bytes")
        if len(label) != 32:
            raise ProofValueError("derived proof: each HMAC label must be 32 bytes")
        label_map[f"c14n{key}"] = "u" + b64url(label)
    if len(set(label_map.values())) != len(label_map):
        raise ProofValueError("derived proof: two blank nodes share one label")
    if not isinstance(indexes, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in indexes
    ):
        raise ProofValueError("derived proof: mandatory indexes must be non-negative ints")
    if list(indexes) != sorted(set(indexes)):
        raise ProofValueError("derived proof: mandatory indexes must be strictly increasing")
    return DerivedProof(sig, pub, _sigs(sigs), label_map, tuple(indexes))


def encode_derived(proof: DerivedProof) -> str:
    """Serialize a derived proofValue (label map compressed back to {int: bytes})."""
    compressed: dict[int, bytes] = {}
    for c14n, label in proof.label_map.items():
        if not c14n.startswith("c14n") or not label.startswith("u"):
            raise ProofValueError(f"cannot compress label {c14n!r} -> {label!r}")
        compressed[int(c14n[4:])] = b64url_decode(label[1:])
    body = cbor2.dumps(
        [proof.base_signature, proof.public_key, list(proof.signatures), compressed, list(proof.mandatory_indexes)]
    )
    return "u" + b64url(DERIVED_HEADER + body)
