"""The messages of a SecAgg+ round as frozen dataclasses with one canonical binary encoding each.

Every message starts with the header `b"FLSA" ‖ version (1) ‖ kind ‖ round context (32 bytes)`;
integers are big-endian, vectors little-endian words. Lists are sorted by index without repeats
and every length is fixed or counted, so `from_bytes` accepts exactly the bytes that `to_bytes`
produces: one message has one encoding, and its SHA-256 (`digest()`) can name it on chain or in IPFS.

    advertise   index u32 ‖ c_pk 32 ‖ s_pk 32
    shares      sender u32 ‖ self-mask commitment 32 ‖ n u32 ‖ n × (recipient u32 ‖ ciphertext 156)
    masked      sender u32 ‖ field bits u8 ‖ dim u64 ‖ dim × word (uint32 for b ≤ 32, else uint64)
    unmask      sender u32 ‖ n u32 ‖ n × (owner u32 ‖ kind u8 ‖ share value 66)
"""

from __future__ import annotations

import enum
import hashlib
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from fedledger.sdk.secagg.errors import SecAggError
from fedledger.sdk.secagg.graph import MAX_INDEX
from fedledger.sdk.secagg.prg import SEED_BYTES, UIntArray, check_bits, dtype_for_bits
from fedledger.sdk.secagg.shamir import PRIME, SHARE_BYTES

__all__ = [
    "CIPHERTEXT_BYTES",
    "SHARE_PLAINTEXT_BYTES",
    "AdvertiseMessage",
    "EncryptedShare",
    "MaskedInputMessage",
    "RevealedShare",
    "ShareKeysMessage",
    "ShareKind",
    "UnmaskMessage",
]

MAGIC = b"FLSA"
VERSION = 1
_HEADER = struct.Struct(">4sBB32s")
# Plaintext of one encrypted share: sender u32 ‖ recipient u32 ‖ self-mask share ‖ s-key share.
SHARE_PLAINTEXT_BYTES = 8 + 2 * SHARE_BYTES
CIPHERTEXT_BYTES = SHARE_PLAINTEXT_BYTES + 16  # Poly1305 tag


class ShareKind(enum.IntEnum):
    """Which secret a revealed share belongs to: a survivor's self-mask seed or a dropout's s-key."""

    SELF_MASK = 0
    SECRET_KEY = 1


def _check_index(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INDEX:
        raise SecAggError(f"{what} must be a client index in [0, {MAX_INDEX}], got {value!r}")


def _check_bytes(value: bytes, length: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != length:
        raise SecAggError(f"{what} must be {length} bytes")


def _check_sorted_unique(indices: list[int], what: str) -> None:
    for a, b in zip(indices, indices[1:], strict=False):
        if a >= b:
            raise SecAggError(f"{what} must be sorted by index without repeats (index {b} after {a})")


class _Reader:
    """Reads a message body strictly: every field present, nothing left over."""

    def __init__(self, data: bytes, kind: int, name: str) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SecAggError(f"{name} must be decoded from bytes, got {type(data).__name__}")
        self.data = bytes(data)
        self.name = name
        if len(self.data) < _HEADER.size:
            raise SecAggError(f"{name}: {len(self.data)} bytes is too short for a header")
        magic, version, got_kind, self.context = _HEADER.unpack_from(self.data)
        if magic != MAGIC or version != VERSION:
            raise SecAggError(f"{name}: not a FedLedger SecAgg v{VERSION} message")
        if got_kind != kind:
            raise SecAggError(f"{name}: message kind {got_kind}, expected {kind}")
        self.pos = _HEADER.size

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise SecAggError(f"{self.name}: truncated at byte {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        s = struct.Struct(fmt)
        return s.unpack(self.take(s.size))

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise SecAggError(f"{self.name}: {len(self.data) - self.pos} unexpected trailing bytes")


class _Message(ABC):
    KIND: ClassVar[int]
    context: bytes

    def _header(self) -> bytes:
        return _HEADER.pack(MAGIC, VERSION, self.KIND, self.context)

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The canonical encoding (each message kind defines its own)."""

    def digest(self) -> bytes:
        """SHA-256 of the canonical encoding."""
        return hashlib.sha256(self.to_bytes()).digest()


@dataclass(frozen=True)
class AdvertiseMessage(_Message):
    """Stage 0: a client's two public keys (c_pk encrypts shares to it, s_pk seeds pairwise masks)."""

    KIND: ClassVar[int] = 1
    context: bytes
    index: int
    c_pk: bytes
    s_pk: bytes

    def __post_init__(self) -> None:
        _check_bytes(self.context, SEED_BYTES, "round context")
        _check_index(self.index, "advertise index")
        _check_bytes(self.c_pk, 32, "c_pk")
        _check_bytes(self.s_pk, 32, "s_pk")

    def to_bytes(self) -> bytes:
        """The canonical encoding."""
        return self._header() + struct.pack(">I", self.index) + self.c_pk + self.s_pk

    @classmethod
    def from_bytes(cls, data: bytes) -> AdvertiseMessage:
        """Decode; SecAggError on anything but a canonical encoding."""
        r = _Reader(data, cls.KIND, "advertise message")
        (index,) = r.unpack(">I")
        c_pk, s_pk = r.take(32), r.take(32)
        r.finish()
        return cls(r.context, index, c_pk, s_pk)


@dataclass(frozen=True)
class EncryptedShare:
    """The ciphertext of the two shares that one client sends one neighbour."""

    recipient: int
    ciphertext: bytes

    def __post_init__(self) -> None:
        _check_index(self.recipient, "share recipient")
        _check_bytes(self.ciphertext, CIPHERTEXT_BYTES, "share ciphertext")


@dataclass(frozen=True)
class ShareKeysMessage(_Message):
    """Stage 1: a client's encrypted shares for each neighbour, and its self-mask commitment."""

    KIND: ClassVar[int] = 2
    context: bytes
    sender: int
    b_commitment: bytes
    shares: tuple[EncryptedShare, ...]

    def __post_init__(self) -> None:
        _check_bytes(self.context, SEED_BYTES, "round context")
        _check_index(self.sender, "share sender")
        _check_bytes(self.b_commitment, 32, "self-mask commitment")
        if not isinstance(self.shares, tuple) or not all(isinstance(s, EncryptedShare) for s in self.shares):
            raise SecAggError("shares must be a tuple of EncryptedShare")
        _check_sorted_unique([s.recipient for s in self.shares], "encrypted shares")
        if any(s.recipient == self.sender for s in self.shares):
            raise SecAggError(f"client {self.sender} cannot send a share to itself")

    def share_for(self, recipient: int) -> EncryptedShare | None:
        """The ciphertext addressed to recipient, or None."""
        for s in self.shares:
            if s.recipient == recipient:
                return s
        return None

    def to_bytes(self) -> bytes:
        """The canonical encoding."""
        body = [self._header(), struct.pack(">I", self.sender), self.b_commitment, struct.pack(">I", len(self.shares))]
        for s in self.shares:
            body.append(struct.pack(">I", s.recipient))
            body.append(s.ciphertext)
        return b"".join(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> ShareKeysMessage:
        """Decode; SecAggError on anything but a canonical encoding."""
        r = _Reader(data, cls.KIND, "shares message")
        (sender,) = r.unpack(">I")
        commitment = r.take(32)
        (count,) = r.unpack(">I")
        if count * (4 + CIPHERTEXT_BYTES) != len(r.data) - r.pos:
            raise SecAggError(f"shares message: {count} shares do not fit its {len(r.data)} bytes")
        shares = []
        for _ in range(count):
            (recipient,) = r.unpack(">I")
            shares.append(EncryptedShare(recipient, r.take(CIPHERTEXT_BYTES)))
        r.finish()
        return cls(r.context, sender, commitment, tuple(shares))


@dataclass(frozen=True, eq=False)
class MaskedInputMessage(_Message):
    """Stage 2: a client's masked input y_u ∈ Z_(2^b)^d (eq=False: compare encodings, not arrays)."""

    KIND: ClassVar[int] = 3
    context: bytes
    sender: int
    field_bits: int
    vector: UIntArray

    def __post_init__(self) -> None:
        _check_bytes(self.context, SEED_BYTES, "round context")
        _check_index(self.sender, "masked input sender")
        dtype = dtype_for_bits(check_bits(self.field_bits))
        v = self.vector
        if not isinstance(v, np.ndarray) or v.ndim != 1 or v.dtype != dtype:
            raise SecAggError(f"masked input of client {self.sender} must be a 1-D {dtype} vector")
        if self.field_bits < 8 * dtype.itemsize and v.size and int(v.max()) >> self.field_bits:
            raise SecAggError(f"masked input of client {self.sender} has values ≥ 2^{self.field_bits}")

    @property
    def dim(self) -> int:
        """The vector length d."""
        return int(self.vector.shape[0])

    def to_bytes(self) -> bytes:
        """The canonical encoding."""
        dtype = dtype_for_bits(self.field_bits).newbyteorder("<")
        head = self._header() + struct.pack(">IBQ", self.sender, self.field_bits, self.dim)
        return head + self.vector.astype(dtype, copy=False).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> MaskedInputMessage:
        """Decode without copying the vector (a read-only view of data)."""
        r = _Reader(data, cls.KIND, "masked input message")
        sender, bits, dim = r.unpack(">IBQ")
        dtype = dtype_for_bits(check_bits(bits))
        if dim * dtype.itemsize != len(r.data) - r.pos:
            raise SecAggError(f"masked input message: {dim} elements do not fit its {len(r.data)} bytes")
        vector = np.frombuffer(r.data, dtype=dtype.newbyteorder("<"), count=dim, offset=r.pos).astype(dtype, copy=False)
        return cls(r.context, sender, bits, vector)


@dataclass(frozen=True)
class RevealedShare:
    """One Shamir share a survivor reveals: of owner's self-mask seed or of owner's s-key."""

    owner: int
    kind: ShareKind
    value: int

    def __post_init__(self) -> None:
        _check_index(self.owner, "share owner")
        if not isinstance(self.kind, ShareKind):
            raise SecAggError(f"share kind must be a ShareKind, got {self.kind!r}")
        if isinstance(self.value, bool) or not isinstance(self.value, int) or not 0 <= self.value < PRIME:
            raise SecAggError(f"share value for owner {self.owner} is not a field element")


@dataclass(frozen=True)
class UnmaskMessage(_Message):
    """Stage 3: the shares a survivor reveals, one per neighbour that shared with it, sorted by owner."""

    KIND: ClassVar[int] = 4
    context: bytes
    sender: int
    shares: tuple[RevealedShare, ...]

    def __post_init__(self) -> None:
        _check_bytes(self.context, SEED_BYTES, "round context")
        _check_index(self.sender, "unmask sender")
        if not isinstance(self.shares, tuple) or not all(isinstance(s, RevealedShare) for s in self.shares):
            raise SecAggError("shares must be a tuple of RevealedShare")
        _check_sorted_unique([s.owner for s in self.shares], "revealed shares")

    def to_bytes(self) -> bytes:
        """The canonical encoding."""
        body = [self._header(), struct.pack(">II", self.sender, len(self.shares))]
        for s in self.shares:
            body.append(struct.pack(">IB", s.owner, int(s.kind)))
            body.append(s.value.to_bytes(SHARE_BYTES, "big"))
        return b"".join(body)

    @classmethod
    def from_bytes(cls, data: bytes) -> UnmaskMessage:
        """Decode; SecAggError on anything but a canonical encoding."""
        r = _Reader(data, cls.KIND, "unmask message")
        sender, count = r.unpack(">II")
        if count * (5 + SHARE_BYTES) != len(r.data) - r.pos:
            raise SecAggError(f"unmask message: {count} shares do not fit its {len(r.data)} bytes")
        shares = []
        for _ in range(count):
            owner, kind = r.unpack(">IB")
            if kind not in (0, 1):
                raise SecAggError(f"unmask message: unknown share kind {kind}")
            shares.append(RevealedShare(owner, ShareKind(kind), int.from_bytes(r.take(SHARE_BYTES), "big")))
        r.finish()
        return cls(r.context, sender, tuple(shares))
