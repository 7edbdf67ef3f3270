"""did:key for Ed25519: multicodec 0xed01 public keys in multibase base58btc, and their DID documents."""

from __future__ import annotations

import functools
from typing import Any

import pydid
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from fedledger.abci_app.errors import ConfigError

__all__ = [
    "ASSERTION_METHOD",
    "DIDKeyError",
    "b58decode",
    "b58encode",
    "decode_public_key_multibase",
    "decode_secret_key_multibase",
    "did_document",
    "did_from_private_key",
    "did_from_public_key",
    "encode_public_key_multibase",
    "encode_secret_key_multibase",
    "public_key_from_did",
    "resolve_verification_method",
    "validate_did",
    "verification_method_id",
]

ASSERTION_METHOD = "assertionMethod"

# Multicodec varints: ed25519-pub (0xed) and ed25519-priv (0x1300), each followed by 32 key bytes.
_ED25519_PUB = b"\xed\x01"
_ED25519_PRIV = b"\x80\x26"
_MULTIBASE_BASE58BTC = "z"
_DID_KEY_PREFIX = "did:key:"
# A 34-byte multicodec key is 48 base58 characters; anything much longer is refused before the
# (quadratic) base58 arithmetic runs on it.
_MAX_MULTIBASE = 128
_MAX_URL = 512

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: index for index, char in enumerate(_ALPHABET)}

# The did:key method spec's DID document contexts for Multikey verification methods.
_DID_CONTEXTS = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]


class DIDKeyError(ConfigError):
    """A DID, DID URL, multibase key or DID document that is not a valid Ed25519 did:key."""

    error_code = "DID_INVALID"


def b58encode(data: bytes) -> str:
    """Bitcoin base58 encoding (each leading zero byte becomes a leading '1')."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode Bitcoin base58, refusing any character outside the alphabet."""
    number = 0
    for char in text:
        digit = _INDEX.get(char)
        if digit is None:
            raise DIDKeyError(f"{char!r} is not a base58btc character")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def _multibase_decode(text: str, what: str) -> bytes:
    if not isinstance(text, str) or not text.startswith(_MULTIBASE_BASE58BTC) or len(text) < 2:
        raise DIDKeyError(f"{what} must be multibase base58btc (a string starting with 'z')")
    if len(text) > _MAX_MULTIBASE:
        raise DIDKeyError(f"{what} is {len(text)} characters long; an Ed25519 key needs under {_MAX_MULTIBASE}")
    return b58decode(text[1:])


def encode_public_key_multibase(public_key: Ed25519PublicKey) -> str:
    """The Multikey publicKeyMultibase of an Ed25519 public key ('z6Mk...')."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _MULTIBASE_BASE58BTC + b58encode(_ED25519_PUB + raw)


def decode_public_key_multibase(text: str) -> Ed25519PublicKey:
    """The Ed25519 public key in a publicKeyMultibase value; DIDKeyError if it is anything else."""
    data = _multibase_decode(text, "publicKeyMultibase")
    if not data.startswith(_ED25519_PUB):
        raise DIDKeyError(f"{text!r} is not an Ed25519 public key (multicodec 0xed01)")
    if len(data) != len(_ED25519_PUB) + 32:
        raise DIDKeyError(f"{text!r} holds {len(data) - 2} key bytes, an Ed25519 public key has 32")
    return Ed25519PublicKey.from_public_bytes(data[len(_ED25519_PUB):])


def encode_secret_key_multibase(private_key: Ed25519PrivateKey) -> str:
    """The Multikey secretKeyMultibase of an Ed25519 private key (multicodec 0x1300 + 32-byte seed)."""
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return _MULTIBASE_BASE58BTC + b58encode(_ED25519_PRIV + seed)


def decode_secret_key_multibase(text: str) -> Ed25519PrivateKey:
    """The Ed25519 private key in a secretKeyMultibase value (as in the spec's test key pair)."""
    data = _multibase_decode(text, "secretKeyMultibase")
    if not data.startswith(_ED25519_PRIV) or len(data) != len(_ED25519_PRIV) + 32:
        raise DIDKeyError("secretKeyMultibase is not an Ed25519 secret key (multicodec 0x1300, 32 bytes)")
    return Ed25519PrivateKey.from_private_bytes(data[len(_ED25519_PRIV):])


def did_from_public_key(public_key: Ed25519PublicKey) -> str:
    """did:key:z6Mk... for an Ed25519 public key."""
    return _DID_KEY_PREFIX + encode_public_key_multibase(public_key)


def did_from_private_key(private_key: Ed25519PrivateKey) -> str:
    """did:key of the public half of an Ed25519 private key."""
    return did_from_public_key(private_key.public_key())


def validate_did(did: Any) -> str:
    """Return did if it is a syntactically valid DID (any method, checked by pydid); else DIDKeyError."""
    if not isinstance(did, str) or not pydid.DID.is_valid(did):
        raise DIDKeyError(f"{did!r} is not a valid DID (did:<method>:<method-specific-id>)")
    return did


def public_key_from_did(did: str) -> Ed25519PublicKey:
    """The Ed25519 public key a did:key encodes; DIDKeyError for any other DID."""
    validate_did(did)
    parsed = pydid.DID(did)
    if parsed.method != "key":
        raise DIDKeyError(f"{did!r} is not a did:key (method {parsed.method!r})")
    msid = str(parsed.method_specific_id)
    if ":" in msid:
        raise DIDKeyError(f"{did!r}: versioned did:key identifiers are not supported")
    key = decode_public_key_multibase(msid)
    # base58 admits exactly one spelling per byte string, but check anyway: one key, one DID.
    if did_from_public_key(key) != did:
        raise DIDKeyError(f"{did!r} is not in canonical did:key form")
    return key


def verification_method_id(did: str) -> str:
    """The id of a did:key's single verification method: did:key:z6Mk…#z6Mk…."""
    public_key_from_did(did)
    return f"{did}#{did[len(_DID_KEY_PREFIX):]}"


def _document(did: str) -> dict[str, Any]:
    public_key_from_did(did)
    vm_id = verification_method_id(did)
    return {
        "@context": list(_DID_CONTEXTS),
        "id": did,
        "verificationMethod": [{
            "id": vm_id,
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": did[len(_DID_KEY_PREFIX):],
        }],
        "authentication": [vm_id],
        ASSERTION_METHOD: [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
    }


def _parse_document(raw: dict[str, Any]) -> Any:
    try:
        return pydid.deserialize_document(raw, strict=True)
    except (ValueError, pydid.DIDError) as exc:  # pragma: no cover - _document builds well-formed documents
        raise DIDKeyError(f"DID document of {raw.get('id')!r} does not validate: {exc}") from exc


def did_document(did: str) -> dict[str, Any]:
    """The DID document of an Ed25519 did:key (Multikey form), checked by pydid's DIDDocument.

    The verification method is listed under authentication, assertionMethod,
    capabilityInvocation and capabilityDelegation. No X25519 keyAgreement key is derived: FedLedger
    uses these DIDs only for signatures.
    """
    raw = _document(did)
    _parse_document(raw)
    return raw


# Resolution is a pure function of the URL, and pydid's validation costs about half a millisecond,
# so answers are memoized (CheckTx, rechecks and FinalizeBlock see the same credential). Failures
# raise and are therefore never cached.
@functools.lru_cache(maxsize=4096)
def _resolve(vm_url: str, purpose: str) -> tuple[str, bytes]:
    try:
        url = pydid.DIDUrl.parse(vm_url)
    except (ValueError, pydid.DIDError) as exc:
        raise DIDKeyError(f"verificationMethod {vm_url!r} is not a DID URL") from exc
    if url.did is None or url.fragment is None or url.path is not None or url.query is not None:
        raise DIDKeyError(f"verificationMethod {vm_url!r} must be did:key:…#fragment, with no path or query")
    did = str(url.did)
    raw = _document(did)
    try:
        method = _parse_document(raw).dereference(vm_url)
    except (ValueError, pydid.DIDError, pydid.DIDDocumentError) as exc:
        raise DIDKeyError(f"verificationMethod {vm_url!r} is not in the DID document of {did}") from exc
    relationship = raw.get(purpose)
    if not isinstance(relationship, list) or vm_url not in relationship:
        raise DIDKeyError(f"verificationMethod {vm_url!r} is not authorized for {purpose}")
    multibase = getattr(method, "public_key_multibase", None)
    if not isinstance(multibase, str):  # pragma: no cover - a did:key document always has one
        raise DIDKeyError(f"verificationMethod {vm_url!r} carries no publicKeyMultibase")
    public_key = decode_public_key_multibase(multibase)
    return did, public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def resolve_verification_method(vm_url: Any, purpose: str = ASSERTION_METHOD) -> tuple[str, Ed25519PublicKey]:
    """Resolve a did:key verification method URL to (controller DID, public key).

    The URL must be an absolute DID URL with a fragment and no path or query; its DID must be a valid
    Ed25519 did:key whose DID document (parsed by pydid) holds that verification method and lists it
    under the verification relationship `purpose`. Pure: the key comes from the DID itself.
    """
    if not isinstance(vm_url, str) or len(vm_url) > _MAX_URL:
        raise DIDKeyError("verificationMethod must be a did:key URL string")
    did, raw = _resolve(vm_url, purpose)
    return did, Ed25519PublicKey.from_public_bytes(raw)
