"""Hand-written CIDv1 support: raw/dag-pb codecs, sha2-256 multihash, base32-lower multibase."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from fedledger.abci_app.errors import ConfigError, Family
from fedledger.ipfs.base import StoreError

__all__ = [
    "CID",
    "CIDError",
    "CODEC_NAMES",
    "DAG_PB_CODEC",
    "RAW_CODEC",
    "SHA2_256",
    "SHA2_256_LENGTH",
    "decode_varint",
    "encode_varint",
    "parse_cid",
    "raw_cid",
    "raw_cid_for_digest",
]

RAW_CODEC = 0x55
DAG_PB_CODEC = 0x70
SHA2_256 = 0x12
SHA2_256_LENGTH = 32

# Codecs a FedLedger CID may carry: raw for single-block payloads (both backends), dag-pb for the
# UnixFS root Kubo builds when a payload spans several chunks.
CODEC_NAMES: dict[int, str] = {RAW_CODEC: "raw", DAG_PB_CODEC: "dag-pb"}

_BASE32_LOWER_PREFIX = "b"
# Multibase prefixes we recognise only to explain why they are refused.
_OTHER_MULTIBASES = {
    "B": "base32 upper",
    "z": "base58btc",
    "f": "base16",
    "F": "base16 upper",
    "m": "base64",
    "u": "base64url",
    "k": "base36",
}
_MAX_VARINT_BYTES = 9  # multiformats caps unsigned varints at 63 bits, i.e. 9 bytes


class CIDError(StoreError, ConfigError):
    """A CID string is malformed or uses a format FedLedger does not accept."""

    family = Family.CONFIG
    error_code = "CID_INVALID"


def encode_varint(value: int) -> bytes:
    """Encode a non-negative integer as an unsigned LEB128 varint (multiformats flavour)."""
    if value < 0 or value >= 1 << 63:
        raise CIDError(f"varint value {value} is outside 0..2**63-1")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def decode_varint(buf: bytes, offset: int = 0) -> tuple[int, int]:
    """Decode an unsigned varint at ``buf[offset:]``; return ``(value, next_offset)``.

    Rejects truncated, over-long and non-minimal encodings, because two spellings of one CID would
    let the same content appear under different names.
    """
    value = 0
    shift = 0
    pos = offset
    while True:
        if pos >= len(buf):
            raise CIDError("truncated varint")
        if pos - offset >= _MAX_VARINT_BYTES:
            raise CIDError("varint longer than 9 bytes")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte == 0 and pos - offset > 1:
                raise CIDError("non-minimal varint encoding")
            return value, pos


def _b32_encode_lower(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _b32_decode_lower(text: str) -> bytes:
    if text != text.lower():
        raise CIDError("base32 multibase 'b' must be lowercase")
    if len(text) % 8 in (1, 3, 6):
        # No byte string encodes to these lengths: the text was truncated or has extra characters.
        raise CIDError(f"base32 text of length {len(text)} is impossible (truncated or extra characters?)")
    padded = text.upper() + "=" * (-len(text) % 8)
    try:
        raw = base64.b32decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise CIDError(f"invalid base32 payload: {exc}") from exc
    # b32decode ignores stray trailing bits; re-encoding catches non-canonical spellings.
    if _b32_encode_lower(raw) != text:
        raise CIDError("non-canonical base32 encoding")
    return raw


@dataclass(frozen=True)
class CID:
    """A parsed CIDv1 whose multihash is sha2-256."""

    codec: int
    digest: bytes
    version: int = 1
    hash_code: int = SHA2_256

    def __post_init__(self) -> None:
        if self.version != 1:
            raise CIDError(f"only CIDv1 is supported, got version {self.version}")
        if self.codec not in CODEC_NAMES:
            raise CIDError(f"unsupported codec 0x{self.codec:x}; expected raw (0x55) or dag-pb (0x70)")
        if self.hash_code != SHA2_256:
            raise CIDError(f"unsupported multihash 0x{self.hash_code:x}; expected sha2-256 (0x12)")
        if len(self.digest) != SHA2_256_LENGTH:
            raise CIDError(f"sha2-256 digest must be 32 bytes, got {len(self.digest)}")

    @property
    def codec_name(self) -> str:
        """Return the codec's multicodec name ("raw" or "dag-pb")."""
        return CODEC_NAMES[self.codec]

    @property
    def is_raw(self) -> bool:
        """Return True when the CID names a raw block, i.e. its digest is the payload's sha256."""
        return self.codec == RAW_CODEC

    def to_bytes(self) -> bytes:
        """Return the binary CID: version, codec, then the multihash (code, length, digest)."""
        return (
            encode_varint(self.version)
            + encode_varint(self.codec)
            + encode_varint(self.hash_code)
            + encode_varint(len(self.digest))
            + self.digest
        )

    def encode(self) -> str:
        """Return the canonical string form: multibase 'b' + lowercase unpadded base32."""
        return _BASE32_LOWER_PREFIX + _b32_encode_lower(self.to_bytes())

    def __str__(self) -> str:
        return self.encode()


def raw_cid_for_digest(digest: bytes) -> str:
    """Return the raw-codec CIDv1 string for a payload whose sha256 digest is ``digest``."""
    return CID(codec=RAW_CODEC, digest=bytes(digest)).encode()


def raw_cid(data: bytes | bytearray | memoryview) -> str:
    """Return the CIDv1 (codec raw, sha2-256, base32 lower) of ``data``."""
    return raw_cid_for_digest(hashlib.sha256(data).digest())


def parse_cid(text: str) -> CID:
    """Parse and validate a CID string; CIDError explains what is wrong with a bad one."""
    if not isinstance(text, str):
        raise CIDError(f"CID must be a string, got {type(text).__name__}")
    if not text:
        raise CIDError("CID is empty")
    if text != text.strip():
        raise CIDError(f"CID {text!r} has surrounding whitespace")
    if text.startswith("Qm") and len(text) == 46:
        raise CIDError(
            f"{text!r} looks like a CIDv0 (base58btc); FedLedger only uses CIDv1 in base32 ('b...')"
        )
    prefix, body = text[0], text[1:]
    if prefix != _BASE32_LOWER_PREFIX:
        what = _OTHER_MULTIBASES.get(prefix, "unknown")
        raise CIDError(
            f"CID {text!r} uses multibase prefix {prefix!r} ({what}); expected 'b' (base32 lower)"
        )
    try:
        raw = _b32_decode_lower(body)
        version, pos = decode_varint(raw, 0)
        if version != 1:
            raise CIDError(f"only CIDv1 is supported, got version {version}")
        codec, pos = decode_varint(raw, pos)
        hash_code, pos = decode_varint(raw, pos)
        length, pos = decode_varint(raw, pos)
        digest = raw[pos:]
        if len(digest) != length:
            raise CIDError(f"multihash declares {length} digest bytes but {len(digest)} follow")
        return CID(codec=codec, digest=digest, version=version, hash_code=hash_code)
    except CIDError as exc:
        raise CIDError(f"invalid CID {text!r}: {exc}") from None
