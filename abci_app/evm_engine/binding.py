"""Binding an Ethereum address to a member's DID: the message both keys sign, and recovering its signer.

A member sends `bind_evm_address {address, signature}` in a FedLedger envelope signed with its
Ed25519 key; `signature` is the Ethereum key's EIP-191 `personal_sign` signature over
`binding_message(chain_id, did, address)`. So both keys agree to the binding, and the message
names the chain and the DID, so it cannot be replayed for another chain or another member.
"""

from __future__ import annotations

import re

from eth_keys.datatypes import Signature
from eth_keys.exceptions import BadSignature
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

from fedledger.abci_app.errors import VerificationError

__all__ = ["ADDRESS_RE", "BindingSignatureError", "binding_message", "normalize_address", "recover_signer"]

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE_BYTES = 65


class BindingSignatureError(VerificationError, ValueError):
    """A binding signature that is malformed or recovers no key."""

    error_code = "BINDING_SIGNATURE"


def normalize_address(address: str) -> str:
    """`0x` + 40 lower-case hex digits; ValueError for anything else."""
    if not isinstance(address, str) or not ADDRESS_RE.match(address):
        raise ValueError(f"{str(address)[:50]!r} is not a 20-byte hex address (0x + 40 hex digits)")
    return address.lower()


def binding_message(chain_id: str, did: str, address: str) -> bytes:
    """The text the Ethereum key signs (with personal_sign) to bind `address` to `did` on chain `chain_id`."""
    return (f"FedLedger EVM address binding\nchain: {chain_id}\ndid: {did}\n"
            f"address: {normalize_address(address)}").encode()


def _personal_hash(message: bytes) -> bytes:
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode("ascii") + message)


def recover_signer(message: bytes, signature: bytes) -> bytes:
    """The 20-byte address whose key signed `message` with personal_sign (v 27/28 or 0/1)."""
    if len(signature) != _SIGNATURE_BYTES:
        raise BindingSignatureError(f"signature must be {_SIGNATURE_BYTES} bytes (r, s, v), got {len(signature)}")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise BindingSignatureError(f"signature recovery id v={signature[64]} is not 0, 1, 27 or 28")
    try:
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
        sig = Signature(vrs=(v, r, s))
        return bytes(sig.recover_public_key_from_msg_hash(_personal_hash(message)).to_canonical_address())
    except (BadSignature, ValidationError, ValueError) as exc:
        raise BindingSignatureError(f"signature recovers no key: {exc}") from exc
