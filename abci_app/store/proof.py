"""Merkle proofs of presence/absence of a key in the state store, and of one record with its value; canonical bytes."""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from fedledger.abci_app.errors import VerificationError
from fedledger.abci_app.store.merkle import (
    BUCKET_BITS,
    HASH_SIZE,
    MAX_KEY_SIZE,
    bucket_hash,
    bucket_index,
    inner_hash,
    value_hash,
)

__all__ = ["PROOF_VERSION", "RECORD_PROOF_VERSION", "Proof", "ProofError", "RecordProof", "verify_proof"]

#: First byte of an encoded proof; bump when the encoding or the hashing rules change.
PROOF_VERSION = 1
#: First byte of an encoded RecordProof. It differs from PROOF_VERSION so that neither encoding parses as the other.
RECORD_PROOF_VERSION = 2

_U32 = struct.Struct(">I")
# Smallest possible encoded entry: u32 key length, 1 key byte, value hash.
_MIN_ENTRY_SIZE = 4 + 1 + HASH_SIZE


class ProofError(VerificationError):
    """A proof is malformed or does not prove the claimed key/value against the given root."""

    error_code = "PROOF"


def _check_bytes(what: str, v: object, size: int | None = None) -> None:
    if not isinstance(v, bytes):
        raise ProofError(f"{what} must be bytes, got {type(v).__name__}")
    if size is not None and len(v) != size:
        raise ProofError(f"{what} must be {size} bytes, got {len(v)}")


@dataclass(frozen=True)
class Proof:
    """Proof for `key`: the full sorted entry list of its bucket and the sibling hashes up to the root.

    `entries` holds (key, sha256(value)) for every key in the bucket, sorted by key; `siblings` holds the
    BUCKET_BITS sibling hashes from the bucket level upwards.
    """

    key: bytes
    entries: tuple[tuple[bytes, bytes], ...]
    siblings: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_bytes("proof key", self.key)
        if not 0 < len(self.key) <= MAX_KEY_SIZE:
            raise ProofError(f"proof key length {len(self.key)} outside 1..{MAX_KEY_SIZE}")
        if not isinstance(self.entries, tuple):
            raise ProofError("proof entries must be a tuple")
        for i, entry in enumerate(self.entries):
            if not isinstance(entry, tuple) or len(entry) != 2:
                raise ProofError(f"proof entry {i} must be a (key, value_hash) pair")
            _check_bytes(f"proof entry {i} key", entry[0])
            if not 0 < len(entry[0]) <= MAX_KEY_SIZE:
                raise ProofError(f"proof entry {i} key length {len(entry[0])} outside 1..{MAX_KEY_SIZE}")
            _check_bytes(f"proof entry {i} value hash", entry[1], HASH_SIZE)
        if not isinstance(self.siblings, tuple) or len(self.siblings) != BUCKET_BITS:
            raise ProofError(f"proof must have a tuple of exactly {BUCKET_BITS} sibling hashes")
        for i, s in enumerate(self.siblings):
            _check_bytes(f"proof sibling {i}", s, HASH_SIZE)

    def encode(self) -> bytes:
        """Return the canonical encoding.

        Layout: u8 version || u32 len(key) || key || u32 n || n * (u32 len(k) || k || value_hash)
        || BUCKET_BITS * sibling hash. All integers big-endian.
        """
        parts = [bytes([PROOF_VERSION]), _U32.pack(len(self.key)), self.key, _U32.pack(len(self.entries))]
        for k, vh in self.entries:
            parts += (_U32.pack(len(k)), k, vh)
        parts.extend(self.siblings)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> Proof:
        """Parse a canonical encoding; raise ProofError on anything malformed (including trailing bytes)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProofError(f"proof encoding must be bytes, got {type(data).__name__}")
        buf = bytes(data)
        end = len(buf)
        pos = 0

        def take(n: int, what: str) -> bytes:
            nonlocal pos
            if n > end - pos:
                raise ProofError(f"proof truncated while reading {what} (need {n} bytes, {end - pos} left)")
            out = buf[pos : pos + n]
            pos += n
            return out

        def take_len(what: str, limit: int) -> int:
            n: int = _U32.unpack(take(4, what))[0]
            if n > limit:
                raise ProofError(f"{what} {n} exceeds limit {limit}")
            return n

        version = take(1, "version")[0]
        if version != PROOF_VERSION:
            raise ProofError(f"unsupported proof version {version} (expected {PROOF_VERSION})")
        key = take(take_len("key length", MAX_KEY_SIZE), "key")
        # Bound the count by the bytes actually present so garbage cannot make us loop for long.
        count = take_len("entry count", (end - pos) // _MIN_ENTRY_SIZE)
        entries = []
        for i in range(count):
            k = take(take_len(f"entry {i} key length", MAX_KEY_SIZE), f"entry {i} key")
            entries.append((k, take(HASH_SIZE, f"entry {i} value hash")))
        siblings = tuple(take(HASH_SIZE, f"sibling {i}") for i in range(BUCKET_BITS))
        if pos != end:
            raise ProofError(f"proof has {end - pos} trailing bytes")
        return cls(key=key, entries=tuple(entries), siblings=siblings)


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> None:
    """Check that `proof` shows `key -> value` under `root` (value None: `key` is absent).

    Return None on success; raise ProofError saying what is wrong otherwise.
    """
    _check_bytes("root", root, HASH_SIZE)
    _check_bytes("key", key)
    if value is not None:
        _check_bytes("value", value)
    if not isinstance(proof, Proof):
        raise ProofError(f"proof must be a Proof, got {type(proof).__name__}")
    if proof.key != key:
        raise ProofError(f"proof is for key {proof.key!r}, not {key!r}")
    idx = bucket_index(key)
    found: bytes | None = None
    prev: bytes | None = None
    for k, vh in proof.entries:
        if prev is not None and k <= prev:
            raise ProofError("proof bucket entries are not strictly sorted by key")
        prev = k
        if bucket_index(k) != idx:
            raise ProofError(f"proof bucket entry {k!r} does not belong to the bucket of {key!r}")
        if k == key:
            found = vh
    if value is None:
        if found is not None:
            raise ProofError(f"key {key!r} is present in the proof's bucket, so absence is not proven")
    elif found is None:
        raise ProofError(f"key {key!r} is not in the proof's bucket")
    elif not hmac.compare_digest(found, value_hash(value)):
        raise ProofError(f"value hash of key {key!r} in the proof does not match the given value")
    h = bucket_hash(proof.entries)
    for lvl, sib in enumerate(proof.siblings):
        h = inner_hash(sib, h) if (idx >> lvl) & 1 else inner_hash(h, sib)
    if not hmac.compare_digest(h, root):
        raise ProofError("proof does not lead to the given root (wrong value, entries or siblings)")


@dataclass(frozen=True)
class RecordProof:
    """One store record as a query answer read it: its value (None: the key is absent) and the Merkle proof.

    This is the data of one ABCI ProofOp (`fedledger:bucket-merkle`): the record's value travels
    with its proof, so a client can rebuild an answer made of several records from the proofs alone.
    """

    value: bytes | None
    proof: Proof

    def __post_init__(self) -> None:
        if self.value is not None:
            _check_bytes("record value", self.value)
        if not isinstance(self.proof, Proof):
            raise ProofError(f"record proof must hold a Proof, got {type(self.proof).__name__}")

    @property
    def key(self) -> bytes:
        """The record's store key (the proof's key)."""
        return self.proof.key

    def encode(self) -> bytes:
        """Return the canonical encoding.

        Layout: u8 RECORD_PROOF_VERSION || u8 present (0 or 1) || [u32 len(value) || value, only if
        present] || Proof.encode(). Integers big-endian.
        """
        if self.value is None:
            head = bytes([RECORD_PROOF_VERSION, 0])
        else:
            head = bytes([RECORD_PROOF_VERSION, 1]) + _U32.pack(len(self.value)) + self.value
        return head + self.proof.encode()

    @classmethod
    def decode(cls, data: bytes) -> RecordProof:
        """Parse a canonical encoding; raise ProofError on anything malformed (including trailing bytes)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProofError(f"record proof encoding must be bytes, got {type(data).__name__}")
        buf = bytes(data)
        if len(buf) < 2:
            raise ProofError(f"record proof truncated: {len(buf)} bytes")
        if buf[0] != RECORD_PROOF_VERSION:
            raise ProofError(f"unsupported record proof version {buf[0]} (expected {RECORD_PROOF_VERSION})")
        if buf[1] == 0:
            return cls(value=None, proof=Proof.decode(buf[2:]))
        if buf[1] != 1:
            raise ProofError(f"record proof presence flag must be 0 or 1, got {buf[1]}")
        if len(buf) < 6:
            raise ProofError("record proof truncated while reading the value length")
        n: int = _U32.unpack(buf[2:6])[0]
        if n > len(buf) - 6:
            raise ProofError(f"record proof value length {n} exceeds the {len(buf) - 6} bytes left")
        return cls(value=buf[6 : 6 + n], proof=Proof.decode(buf[6 + n :]))

    def verify(self, root: bytes) -> None:
        """Check the record (key -> value, or key absent) against `root`; raise ProofError if it does not hold."""
        verify_proof(root, self.key, self.value, self.proof)
