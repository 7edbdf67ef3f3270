"""A consortium host's public card: what one organization publishes so the others can put it in genesis.

`fedledger node init` writes it; `fedledger genesis assemble` reads every organization's card. It
holds only public material (organization id, issuer DID, validator public key and address, node id,
p2p address) and two signatures over it: one by the issuer key, one by the validator key, so a card
proves its author holds both private keys and nobody can publish another host's keys as their own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fedledger.abci_app.did.didkey import did_from_private_key, public_key_from_did
from fedledger.abci_app.modules.identity.genesis import organization_record
from fedledger.localnet.errors import CardError

__all__ = [
    "CARD_VERSION",
    "HostCard",
    "card_payload",
    "load_card",
    "parse_card",
    "parse_p2p_address",
    "sign_card",
    "validator_address",
]

CARD_VERSION = 1
_NODE_ID_RE = re.compile(r"^[0-9a-f]{40}$")
_ADDRESS_RE = re.compile(r"^[0-9A-F]{40}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_FIELDS = ("version", "org", "name", "issuer_did", "validator_address", "validator_pub_key", "node_id",
           "p2p_address")
_SIGNATURES = ("issuer_signature", "validator_signature")


@dataclass(frozen=True)
class HostCard:
    """One organization's public card (see the module docstring); ``p2p_address`` is ``id@host:port`` or None."""

    org: str
    name: str
    issuer_did: str
    validator_address: str
    validator_pub_key: str  # base64 of the raw 32-byte Ed25519 key, as in CometBFT's genesis
    node_id: str
    p2p_address: str | None
    issuer_signature: str
    validator_signature: str
    version: int = CARD_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what `node init` prints and writes to card.json)."""
        return asdict(self)


def validator_address(pub_key_b64: str) -> str:
    """CometBFT's address of an Ed25519 validator key: the first 20 bytes of sha256(pubkey), upper hex."""
    raw = _b64(pub_key_b64, "validator_pub_key", 32)
    return hashlib.sha256(raw).digest()[:20].hex().upper()


def parse_p2p_address(text: str) -> tuple[str, str, int]:
    """Split ``id@host:port`` into its parts; CardError says what is wrong."""
    if not isinstance(text, str) or text.count("@") != 1:
        raise CardError(f"p2p address {text!r} must look like NODE_ID@HOST:PORT")
    node_id, _, hostport = text.partition("@")
    host, sep, port_text = hostport.rpartition(":")
    if not _NODE_ID_RE.match(node_id):
        raise CardError(f"p2p address {text!r}: node id must be 40 lowercase hex digits")
    if not sep or not _HOST_RE.match(host):
        raise CardError(f"p2p address {text!r}: {host!r} is not a host name or IPv4 address")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise CardError(f"p2p address {text!r}: port must be 1..65535")
    return node_id, host, int(port_text)


def card_payload(fields: dict[str, Any]) -> bytes:
    """The bytes both signatures cover: the card's public fields as canonical JSON (sorted keys, no spaces)."""
    return json.dumps({k: fields[k] for k in _FIELDS}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def sign_card(org: str, name: str, issuer: Ed25519PrivateKey, validator: Ed25519PrivateKey, node_id: str,
              p2p_address: str | None) -> HostCard:
    """Make and sign the card of a host whose private keys are ``issuer`` and ``validator``."""
    pub = base64.b64encode(validator.public_key().public_bytes_raw()).decode()
    fields: dict[str, Any] = {
        "version": CARD_VERSION, "org": org, "name": name, "issuer_did": did_from_private_key(issuer),
        "validator_address": validator_address(pub), "validator_pub_key": pub, "node_id": node_id,
        "p2p_address": p2p_address,
    }
    payload = card_payload(fields)
    card = HostCard(**fields, issuer_signature=base64.b64encode(issuer.sign(payload)).decode(),
                    validator_signature=base64.b64encode(validator.sign(payload)).decode())
    return parse_card(card.to_dict(), "the new card")  # the same checks every reader makes


def _b64(text: Any, what: str, size: int) -> bytes:
    if not isinstance(text, str):
        raise CardError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise CardError(f"{what} is not base64: {exc}") from exc
    if len(raw) != size:
        raise CardError(f"{what} must encode {size} bytes, not {len(raw)}")
    return raw


def _verify(key: Ed25519PublicKey, signature: bytes, payload: bytes, what: str, source: str) -> None:
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise CardError(f"{source}: the {what} does not verify: the card was altered or not made by its keys") \
            from None


def parse_card(data: Any, source: str) -> HostCard:
    """Check a card's shape, consistency and both signatures; return it. ``source`` names it in errors."""
    if not isinstance(data, dict):
        raise CardError(f"{source}: a card is a JSON object, not {type(data).__name__}")
    missing = [k for k in (*_FIELDS, *_SIGNATURES) if k not in data]
    unknown = sorted(set(data) - set(_FIELDS) - set(_SIGNATURES))
    if missing or unknown:
        raise CardError(f"{source}: missing fields {missing} / unknown fields {unknown}")
    if data["version"] != CARD_VERSION:
        raise CardError(f"{source}: card version {data['version']!r}, this fedledger reads {CARD_VERSION}")
    for key in ("org", "name", "issuer_did", "validator_address", "node_id"):
        if not isinstance(data[key], str):
            raise CardError(f"{source}: {key} must be a string")
    try:
        # The chain's own rules for an organization id and an issuer DID.
        organization_record({"id": data["org"], "issuers": [data["issuer_did"]], "enrollment_cap": 1})
        issuer_key = public_key_from_did(data["issuer_did"])
    except ValueError as exc:
        raise CardError(f"{source}: {exc}") from exc
    if not _NODE_ID_RE.match(data["node_id"]):
        raise CardError(f"{source}: node_id must be 40 lowercase hex digits")
    if not _ADDRESS_RE.match(data["validator_address"]) \
            or data["validator_address"] != validator_address(data["validator_pub_key"]):
        raise CardError(f"{source}: validator_address is not the address of validator_pub_key")
    if data["p2p_address"] is not None:
        node_id, _, _ = parse_p2p_address(data["p2p_address"])
        if node_id != data["node_id"]:
            raise CardError(f"{source}: p2p_address names node {node_id}, the card's node is {data['node_id']}")
    payload = card_payload(data)
    validator_key = Ed25519PublicKey.from_public_bytes(_b64(data["validator_pub_key"], "validator_pub_key", 32))
    _verify(issuer_key, _b64(data["issuer_signature"], "issuer_signature", 64), payload, "issuer signature", source)
    _verify(validator_key, _b64(data["validator_signature"], "validator_signature", 64), payload,
            "validator signature", source)
    return HostCard(**{k: data[k] for k in (*_FIELDS, *_SIGNATURES)})


def load_card(path: Path) -> HostCard:
    """Read and check the card in ``path``; CardError for a missing, unreadable or invalid file."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CardError(f"card {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise CardError(f"card {path} is not readable JSON: {exc}") from exc
    return parse_card(data, str(path))
