"""The signed transaction envelope: canonical encoding, Ed25519 signatures, stateless checks."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fedledger.abci_app.canonical import CanonicalError, canonical_bytes, parse_canonical
from fedledger.abci_app.errors import Code, TxError

__all__ = [
    "ENVELOPE_VERSION",
    "MAX_TX_BYTES",
    "SIGN_DOMAIN",
    "Tx",
    "decode_tx",
    "sign_tx",
    "tx_hash",
]

ENVELOPE_VERSION = 1
MAX_TX_BYTES = 16 * 1024
# Domain separation: a FedLedger signature can never be replayed as a signature on anything else.
SIGN_DOMAIN = b"fedledger-tx-v1\n"
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_FIELDS = frozenset({"v", "type", "body", "chain_id", "nonce", "signer", "sig"})


@dataclass(frozen=True)
class Tx:
    """A decoded, signature-checked transaction envelope."""

    type: str
    body: dict[str, Any]
    chain_id: str
    nonce: int
    signer: str  # hex of the 32-byte Ed25519 public key
    signature: str  # hex of the 64-byte signature
    raw: bytes

    @property
    def hash(self) -> str:
        """Upper-case hex sha256 of the raw bytes, as CometBFT names txs."""
        return tx_hash(self.raw)


def tx_hash(raw: bytes) -> str:
    """CometBFT's tx hash: sha256 of the tx bytes, upper-case hex."""
    return hashlib.sha256(raw).hexdigest().upper()


def _unsigned(tx_type: str, body: dict[str, Any], chain_id: str, nonce: int, signer: str) -> dict[str, Any]:
    return {"v": ENVELOPE_VERSION, "type": tx_type, "body": body, "chain_id": chain_id, "nonce": nonce,
            "signer": signer}


def sign_bytes(tx_type: str, body: dict[str, Any], chain_id: str, nonce: int, signer: str) -> bytes:
    """The exact bytes that are signed: the domain tag plus the canonical envelope without `sig`."""
    return SIGN_DOMAIN + canonical_bytes(_unsigned(tx_type, body, chain_id, nonce, signer))


def sign_tx(key: Ed25519PrivateKey, tx_type: str, body: dict[str, Any], chain_id: str, nonce: int) -> bytes:
    """Build and sign a tx; returns the canonical bytes ready for broadcast."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    signer = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    signature = key.sign(sign_bytes(tx_type, body, chain_id, nonce, signer)).hex()
    envelope = _unsigned(tx_type, body, chain_id, nonce, signer)
    envelope["sig"] = signature
    return canonical_bytes(envelope)


def decode_tx(raw: bytes, chain_id: str) -> Tx:
    """Decode and authenticate tx bytes; raise TxError with a distinct code for each failure.

    This is everything that can be checked without state: size, canonical encoding, envelope
    shape, chain id and signature. Nonce and body checks need state and happen later.
    """
    if len(raw) > MAX_TX_BYTES:
        raise TxError(Code.OVERSIZE, f"tx is {len(raw)} bytes; the limit is {MAX_TX_BYTES}")
    if not raw:
        raise TxError(Code.ENCODING, "empty tx")
    try:
        env = parse_canonical(raw)
    except CanonicalError as exc:
        raise TxError(Code.ENCODING, f"tx is not a canonical FedLedger envelope: {exc}") from exc
    if not isinstance(env, dict) or set(env) != _FIELDS:
        raise TxError(Code.ENCODING, f"envelope must be an object with exactly the fields {sorted(_FIELDS)}")
    if env["v"] != ENVELOPE_VERSION:
        raise TxError(Code.ENCODING, f"envelope version {env['v']!r} is not supported (want {ENVELOPE_VERSION})")
    tx_type, body, tx_chain, nonce = env["type"], env["body"], env["chain_id"], env["nonce"]
    signer, sig = env["signer"], env["sig"]
    if not isinstance(tx_type, str) or not _TYPE_RE.match(tx_type):
        raise TxError(Code.ENCODING, "tx type must be a short lower-case identifier")
    if not isinstance(body, dict):
        raise TxError(Code.ENCODING, "tx body must be an object")
    if not isinstance(nonce, int) or isinstance(nonce, bool) or nonce < 1:
        raise TxError(Code.ENCODING, "nonce must be a positive integer")
    if not isinstance(signer, str) or not _HEX64.match(signer):
        raise TxError(Code.ENCODING, "signer must be a 32-byte Ed25519 public key in lower-case hex")
    if not isinstance(sig, str) or not _HEX128.match(sig):
        raise TxError(Code.ENCODING, "sig must be a 64-byte Ed25519 signature in lower-case hex")
    if tx_chain != chain_id:
        raise TxError(Code.WRONG_CHAIN, f"tx is for chain {tx_chain!r}, this chain is {chain_id!r}")
    # raw is canonical, so the unsigned envelope's canonical bytes are raw minus its `"sig":"…",`
    # member. It is the last occurrence: only signer (hex), type (an identifier) and v follow it.
    cut = raw.rfind(b',"sig":"')
    unsigned = raw[:cut] + raw[cut + len(b',"sig":"') + len(sig) + 1:]
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer)).verify(bytes.fromhex(sig), SIGN_DOMAIN + unsigned)
    except (InvalidSignature, ValueError) as exc:
        raise TxError(Code.BAD_SIGNATURE, "signature does not verify for the signer key") from exc
    return Tx(type=tx_type, body=body, chain_id=tx_chain, nonce=nonce, signer=signer, signature=sig, raw=raw)
