"""X25519 key pairs, key agreement and HKDF-SHA256 derivations, and the AEAD that protects shares.

Each client holds two key pairs per round: the c-key (its agreement with a neighbour's c-key
keys the ChaCha20-Poly1305 encryption of the shares they send each other) and the s-key (its
agreement with a neighbour's s-key seeds their pairwise mask). Keys are fresh every round and
never reused, and every derivation is salted with the 32-byte round context (the block hash), so
nothing carries over from one round to the next.

Both directions of a pair share one AEAD key; the 96-bit nonce is (sender, recipient, 0), unique
because each direction encrypts exactly one message per round. The associated data binds the
ciphertext to the round context and to both indices, so a share cannot be replayed to another
round or re-addressed.
"""

from __future__ import annotations

import hashlib
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.prg import RandomSource, check_seed

__all__ = [
    "KEY_BYTES",
    "aead_key",
    "decrypt_share",
    "encrypt_share",
    "generate_private_key",
    "load_private_key",
    "load_public_key",
    "mask_seed",
    "private_bytes",
    "public_bytes",
    "public_hex",
    "self_mask_commitment",
]

KEY_BYTES = 32
_MASK_INFO = b"fedledger-secagg-v1/pairwise-mask"
_AEAD_INFO = b"fedledger-secagg-v1/share-encryption"
_SHARE_AD = b"fedledger-secagg-v1/share"
_COMMIT_TAG = b"fedledger-secagg-v1/self-mask-commitment"


def generate_private_key(rng: RandomSource = os.urandom) -> X25519PrivateKey:
    """A fresh X25519 private key from 32 bytes of rng (os.urandom unless a test supplies a Drbg)."""
    return X25519PrivateKey.from_private_bytes(rng(KEY_BYTES))


def private_bytes(key: X25519PrivateKey) -> bytes:
    """The 32 raw bytes of a private key (what is secret-shared for dropout recovery)."""
    return key.private_bytes_raw()


def load_private_key(raw: bytes) -> X25519PrivateKey:
    """A private key from its 32 raw bytes."""
    if not isinstance(raw, bytes | bytearray) or len(raw) != KEY_BYTES:
        raise SecAggError(f"an X25519 private key is {KEY_BYTES} bytes")
    return X25519PrivateKey.from_private_bytes(bytes(raw))


def public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key (or of a private key's public key)."""
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes_raw()


def public_hex(key: X25519PrivateKey | X25519PublicKey) -> str:
    """The public key as 64 lowercase hex digits (the form the chain stores)."""
    return public_bytes(key).hex()


def load_public_key(value: bytes | str) -> X25519PublicKey:
    """A public key from 32 raw bytes or 64 hex digits; SecAggError otherwise."""
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise SecAggError(f"public key is not hex: {value[:16]!r}…") from None
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
    else:
        raise SecAggError(f"public key must be bytes or hex, got {type(value).__name__}")
    if len(raw) != KEY_BYTES:
        raise SecAggError(f"an X25519 public key is {KEY_BYTES} bytes, got {len(raw)}")
    return X25519PublicKey.from_public_bytes(raw)


def _agree(private: X25519PrivateKey, peer: bytes, context: bytes, info: bytes) -> bytes:
    try:
        shared = private.exchange(load_public_key(peer))
    except ValueError as exc:  # cryptography refuses a low-order peer key (all-zero shared secret)
        raise SecAggError(f"key agreement failed with public key {peer.hex()[:16]}…: {exc}") from None
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=check_seed(context, "round context"), info=info)
    return hkdf.derive(shared)


def mask_seed(s_private: X25519PrivateKey, peer_s_public: bytes, context: bytes) -> bytes:
    """The 32-byte pairwise mask seed s_uv; symmetric, so u and v (or the server from u's key) agree."""
    return _agree(s_private, peer_s_public, context, _MASK_INFO)


def aead_key(c_private: X25519PrivateKey, peer_c_public: bytes, context: bytes) -> bytes:
    """The 32-byte ChaCha20-Poly1305 key for the shares that u and v send each other."""
    return _agree(c_private, peer_c_public, context, _AEAD_INFO)


def _nonce_and_ad(context: bytes, sender: int, recipient: int) -> tuple[bytes, bytes]:
    pair = struct.pack(">II", sender, recipient)
    return pair + bytes(4), _SHARE_AD + context + pair


def encrypt_share(key: bytes, context: bytes, sender: int, recipient: int, plaintext: bytes) -> bytes:
    """Encrypt sender's share payload for recipient (ciphertext = plaintext length + 16-byte tag)."""
    nonce, ad = _nonce_and_ad(context, sender, recipient)
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, ad)


def decrypt_share(key: bytes, context: bytes, sender: int, recipient: int, ciphertext: bytes) -> bytes:
    """Decrypt and authenticate a share payload; SecAggError naming both clients if it was tampered with."""
    nonce, ad = _nonce_and_ad(context, sender, recipient)
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, ad)
    except InvalidTag:
        raise SecAggError(
            f"the encrypted shares from client {sender} to client {recipient} fail authentication "
            "(tampered, wrong keys, or another round)"
        ) from None


def self_mask_commitment(context: bytes, index: int, seed: bytes) -> bytes:
    """SHA-256 commitment to a client's self-mask seed b_u, checked after its reconstruction.

    b_u is a uniformly random 256-bit string, so the hash reveals nothing usable about it; the
    commitment lets the server tell a reconstruction from tampered shares from the real seed.
    """
    return hashlib.sha256(_COMMIT_TAG + check_seed(context, "round context") + index.to_bytes(4, "big")
                          + check_seed(seed, "self-mask seed")).digest()
