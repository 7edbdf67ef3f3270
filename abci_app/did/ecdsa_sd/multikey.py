"""P-256 Multikey encodings (multicodec p256-pub 0x1200 / p256-priv 0x1306, base58btc) and did:key for them."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.abci_app.did.didkey import b58decode, b58encode
from fedledger.abci_app.errors import ConfigError

__all__ = [
    "MultikeyError",
    "decode_p256_public",
    "decode_p256_secret",
    "did_key_p256",
    "encode_p256_public",
    "encode_p256_secret",
    "p256_public_from_bytes",
    "p256_public_multikey_bytes",
]

# Unsigned-varint multicodec headers: 0x1200 -> 80 24, 0x1306 -> 86 26.
P256_PUB = b"\x80\x24"
P256_PRIV = b"\x86\x26"
_MAX_MULTIBASE = 80  # 35 bytes are 48 base58 characters; refuse long input before base58's bignum work


class MultikeyError(ConfigError):
    """A multibase key or did:key that is not a valid P-256 Multikey."""

    error_code = "SD_MULTIKEY_INVALID"


def _b58(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not text.startswith("z") or not 2 <= len(text) <= _MAX_MULTIBASE:
        raise MultikeyError(f"{what} must be a base58btc multibase string ('z...') of at most {_MAX_MULTIBASE} chars")
    try:
        return b58decode(text[1:])
    except ConfigError as exc:
        raise MultikeyError(f"{what}: {exc}") from exc


def p256_public_from_bytes(multikey: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its 35 Multikey bytes (header + 33-byte compressed point)."""
    if len(multikey) != 35 or multikey[:2] != P256_PUB:
        raise MultikeyError("a P-256 Multikey is the 0x1200 header and a 33-byte compressed point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), multikey[2:])
    except ValueError as exc:
        raise MultikeyError(f"not a point on P-256: {exc}") from exc


def p256_public_multikey_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    """The 35 Multikey bytes of a P-256 public key (what ecdsa-sd-2023 signs over)."""
    return P256_PUB + key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


def decode_p256_public(text: object) -> ec.EllipticCurvePublicKey:
    """Parse a publicKeyMultibase ('zDna...')."""
    return p256_public_from_bytes(_b58(text, "P-256 publicKeyMultibase"))


def encode_p256_public(key: ec.EllipticCurvePublicKey) -> str:
    """The publicKeyMultibase ('zDna...') of a P-256 public key."""
    return "z" + b58encode(p256_public_multikey_bytes(key))


def decode_p256_secret(text: object) -> ec.EllipticCurvePrivateKey:
    """Parse a secretKeyMultibase ('z42t...')."""
    raw = _b58(text, "P-256 secretKeyMultibase")
    if len(raw) != 34 or raw[:2] != P256_PRIV:
        raise MultikeyError("a P-256 secret Multikey is the 0x1306 header and a 32-byte scalar")
    try:
        return ec.derive_private_key(int.from_bytes(raw[2:], "big"), ec.SECP256R1())
    except ValueError as exc:
        raise MultikeyError(f"not a P-256 scalar: {exc}") from exc


def encode_p256_secret(key: ec.EllipticCurvePrivateKey) -> str:
    """The secretKeyMultibase of a P-256 private key."""
    return "z" + b58encode(P256_PRIV + key.private_numbers().private_value.to_bytes(32, "big"))


def did_key_p256(key: ec.EllipticCurvePublicKey) -> str:
    """did:key DID of a P-256 key; its one verification method is did#<multibase>."""
    return "did:key:" + encode_p256_public(key)
