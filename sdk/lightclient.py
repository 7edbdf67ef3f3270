"""Verifying a CometBFT v0.38 signed header (header + commit) against a trusted validator set.

A node answering RPC can lie about anything it serves, including block headers. A header can be
trusted only when a commit signed by more than 2/3 of a validator set we already trust covers
exactly that header. This module checks that from first principles, the way CometBFT v0.38 does:

* the header hash is recomputed from the header's fields (a simple Merkle tree over their
  protobuf encodings, `types.Header.Hash`) and must equal the block ID hash the commit signs;
* each `BlockIDFlagCommit` signature is checked with Ed25519 over the rebuilt vote sign bytes
  (the length-delimited protobuf `CanonicalVote`, `types.VoteSignBytes`);
* the signing validators must hold more than 2/3 of the trusted set's total voting power;
* the header's `validators_hash` must equal the hash of the trusted set (`ValidatorSet.Hash`), so
  a header produced by any other (e.g. changed) validator set is refused.

The root of trust is a `TrustRoot`: the chain id and validator set read from a genesis file you
hold locally, or from a validator-set file you trust. It is never taken from the node being checked.
The protobuf encodings are written by hand (a few wire-format primitives) so that the exact bytes
are visible here and depend on no generated code.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fedledger.abci_app.errors import Family, VerificationError
from fedledger.abci_app.server import encode_uvarint
from fedledger.sdk.errors import ClientError

__all__ = [
    "BLOCK_ID_FLAG_ABSENT",
    "BLOCK_ID_FLAG_COMMIT",
    "BLOCK_ID_FLAG_NIL",
    "ED25519_KEY_TYPE",
    "MAX_TOTAL_VOTING_POWER",
    "BlockID",
    "Commit",
    "CommitSig",
    "Header",
    "HeaderVerificationError",
    "LightClientError",
    "SignedHeader",
    "Timestamp",
    "TrustRoot",
    "TrustRootError",
    "Validator",
    "VerifiedHeader",
    "header_hash",
    "simple_merkle_root",
    "validator_set_hash",
    "verify_signed_header",
    "vote_sign_bytes",
]

BLOCK_ID_FLAG_ABSENT = 1
BLOCK_ID_FLAG_COMMIT = 2
BLOCK_ID_FLAG_NIL = 3
#: The amino type name CometBFT uses for Ed25519 keys in genesis and RPC JSON.
ED25519_KEY_TYPE = "tendermint/PubKeyEd25519"
#: CometBFT's bound on a validator set's total power (int64 max / 8), so sums can never overflow there.
MAX_TOTAL_VOTING_POWER = ((1 << 63) - 1) // 8

_PRECOMMIT_TYPE = 2
_HASH_SIZE = 32
_ADDRESS_SIZE = 20
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_UINT32_MAX = (1 << 32) - 1
_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


class LightClientError(ClientError, VerificationError):
    """Base of the light client's errors."""

    family = Family.CRYPTO
    error_code = "LIGHT_CLIENT"


class TrustRootError(LightClientError):
    """A genesis or validator-set file cannot serve as a root of trust (unreadable, malformed, unsupported)."""

    family = Family.CONFIG
    error_code = "TRUST_ROOT"


class HeaderVerificationError(LightClientError):
    """A signed header is malformed or is not proven by the trusted validator set's commit."""

    error_code = "HEADER_UNVERIFIED"


# ----------------------------------------------------------------------------- protobuf wire format
# Only what the signed structures need. proto3 omits scalar fields holding their zero value;
# gogoproto's non-nullable embedded messages are always written, even when empty.


def _tag(field: int, wire_type: int) -> bytes:
    return encode_uvarint((field << 3) | wire_type)


def _pb_varint(field: int, n: int) -> bytes:
    # A negative int64 is sent as its 64-bit two's complement (10 bytes), as Go does.
    return b"" if n == 0 else _tag(field, 0) + encode_uvarint(n & 0xFFFFFFFFFFFFFFFF)


def _pb_sfixed64(field: int, n: int) -> bytes:
    return b"" if n == 0 else _tag(field, 1) + struct.pack("<q", n)


def _pb_bytes(field: int, data: bytes) -> bytes:
    return b"" if not data else _tag(field, 2) + encode_uvarint(len(data)) + data


def _pb_message(field: int, body: bytes) -> bytes:
    """A non-nullable embedded message: present even when its own encoding is empty."""
    return _tag(field, 2) + encode_uvarint(len(body)) + body


# ----------------------------------------------------------------------------- simple Merkle tree

def _leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def _inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def simple_merkle_root(items: Sequence[bytes]) -> bytes:
    """CometBFT's `merkle.HashFromByteSlices`: RFC 6962 tree, split at the largest power of two below n.

    The empty list hashes to sha256 of nothing.
    """
    n = len(items)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return _leaf_hash(items[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return _inner_hash(simple_merkle_root(items[:k]), simple_merkle_root(items[k:]))


# ----------------------------------------------------------------------------- data types

@dataclass(frozen=True)
class Timestamp:
    """A google.protobuf.Timestamp: seconds since the Unix epoch and nanoseconds (0..999 999 999)."""

    seconds: int
    nanos: int

    @staticmethod
    def parse(text: object, what: str = "timestamp") -> Timestamp:
        """Parse an RFC 3339 time as CometBFT writes it (up to 9 fractional digits, `Z` or an offset)."""
        if not isinstance(text, str):
            raise HeaderVerificationError(f"{what} must be an RFC 3339 string, got {type(text).__name__}")
        m = _RFC3339_RE.match(text)
        if m is None:
            raise HeaderVerificationError(f"{what} {text!r} is not an RFC 3339 time")
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60):
            raise HeaderVerificationError(f"{what} {text!r} is out of range")
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        zone = m.group(8)
        if zone != "Z":
            offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
            seconds -= offset if zone[0] == "+" else -offset
        nanos = int((m.group(7) or "").ljust(9, "0"))
        return Timestamp(seconds, nanos)

    def encode(self) -> bytes:
        """The protobuf encoding of google.protobuf.Timestamp {seconds = 1, nanos = 2}."""
        return _pb_varint(1, self.seconds) + _pb_varint(2, self.nanos)


@dataclass(frozen=True)
class BlockID:
    """A block ID: the header hash and the part set header {total, hash}."""

    hash: bytes
    parts_total: int
    parts_hash: bytes

    def is_zero(self) -> bool:
        """True for the empty block ID (e.g. the last_block_id of the first block)."""
        return not self.hash and self.parts_total == 0 and not self.parts_hash

    def encode(self) -> bytes:
        """The protobuf encoding of BlockID {hash = 1, part_set_header = 2 {total = 1, hash = 2}}.

        CanonicalBlockID has the same fields and numbers, so this also serves the vote sign bytes.
        """
        return _pb_bytes(1, self.hash) + _pb_message(2, _pb_varint(1, self.parts_total) + _pb_bytes(2, self.parts_hash))


@dataclass(frozen=True)
class Header:
    """The fields of a CometBFT v0.38 block header, decoded from RPC JSON."""

    version_block: int
    version_app: int
    chain_id: str
    height: int
    time: Timestamp
    last_block_id: BlockID
    last_commit_hash: bytes
    data_hash: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    consensus_hash: bytes
    app_hash: bytes
    last_results_hash: bytes
    evidence_hash: bytes
    proposer_address: bytes

    @staticmethod
    def from_json(doc: object) -> Header:
        """Decode the `header` object of a /commit or /block answer."""
        d = _obj(doc, "header")
        version = _obj(d.get("version"), "header.version")
        return Header(
            version_block=_uint(version.get("block"), "header.version.block", (1 << 64) - 1),
            version_app=_uint(version.get("app", 0), "header.version.app", (1 << 64) - 1),
            chain_id=_str(d.get("chain_id"), "header.chain_id"),
            height=_height(d.get("height"), "header.height"),
            time=Timestamp.parse(d.get("time"), "header.time"),
            last_block_id=_block_id(d.get("last_block_id"), "header.last_block_id"),
            last_commit_hash=_hexbytes(d.get("last_commit_hash"), "header.last_commit_hash", (0, _HASH_SIZE)),
            data_hash=_hexbytes(d.get("data_hash"), "header.data_hash", (0, _HASH_SIZE)),
            validators_hash=_hexbytes(d.get("validators_hash"), "header.validators_hash", (_HASH_SIZE,)),
            next_validators_hash=_hexbytes(d.get("next_validators_hash"), "header.next_validators_hash",
                                           (_HASH_SIZE,)),
            consensus_hash=_hexbytes(d.get("consensus_hash"), "header.consensus_hash", (0, _HASH_SIZE)),
            app_hash=_hexbytes(d.get("app_hash"), "header.app_hash", None),
            last_results_hash=_hexbytes(d.get("last_results_hash"), "header.last_results_hash", (0, _HASH_SIZE)),
            evidence_hash=_hexbytes(d.get("evidence_hash"), "header.evidence_hash", (0, _HASH_SIZE)),
            proposer_address=_hexbytes(d.get("proposer_address"), "header.proposer_address", (_ADDRESS_SIZE,)),
        )

    def hash(self) -> bytes:
        """The block hash this header commits to (see `header_hash`)."""
        return header_hash(self)


@dataclass(frozen=True)
class CommitSig:
    """One validator's entry in a commit: its flag, address, vote timestamp and signature."""

    block_id_flag: int
    validator_address: bytes
    timestamp: Timestamp
    signature: bytes


@dataclass(frozen=True)
class Commit:
    """A commit: the height, round and block ID the precommits are for, one CommitSig per validator."""

    height: int
    round: int
    block_id: BlockID
    signatures: tuple[CommitSig, ...]

    @staticmethod
    def from_json(doc: object) -> Commit:
        """Decode the `commit` object of a /commit answer."""
        d = _obj(doc, "commit")
        raw_sigs = d.get("signatures")
        if not isinstance(raw_sigs, list):
            raise HeaderVerificationError("commit.signatures must be a list")
        sigs = []
        for i, raw in enumerate(raw_sigs):
            s = _obj(raw, f"commit.signatures[{i}]")
            flag = s.get("block_id_flag")
            if isinstance(flag, bool) or not isinstance(flag, int):
                raise HeaderVerificationError(f"commit.signatures[{i}].block_id_flag must be an integer")
            sig_b64 = s.get("signature")
            if sig_b64 is None:
                sig = b""
            elif isinstance(sig_b64, str):
                try:
                    sig = base64.b64decode(sig_b64, validate=True)
                except ValueError as exc:
                    raise HeaderVerificationError(f"commit.signatures[{i}].signature is not base64") from exc
            else:
                raise HeaderVerificationError(f"commit.signatures[{i}].signature must be a base64 string or null")
            # Absent votes carry Go's zero time and an empty address; they are not checked anyway.
            sigs.append(CommitSig(
                block_id_flag=flag,
                validator_address=_hexbytes(s.get("validator_address"), f"commit.signatures[{i}].validator_address",
                                            (0, _ADDRESS_SIZE)),
                timestamp=Timestamp.parse(s.get("timestamp"), f"commit.signatures[{i}].timestamp"),
                signature=sig,
            ))
        rnd = d.get("round")
        if isinstance(rnd, bool) or not isinstance(rnd, int) or not 0 <= rnd <= 2**31 - 1:
            raise HeaderVerificationError(f"commit.round must be a non-negative int32, got {rnd!r}")
        return Commit(height=_height(d.get("height"), "commit.height"), round=rnd,
                      block_id=_block_id(d.get("block_id"), "commit.block_id"), signatures=tuple(sigs))


@dataclass(frozen=True)
class SignedHeader:
    """A header with the commit that signs it, as served by /commit."""

    header: Header
    commit: Commit

    @staticmethod
    def from_rpc(result: object) -> SignedHeader:
        """Decode a /commit result (`{"signed_header": {...}, "canonical": ...}`) or a bare signed_header."""
        d = _obj(result, "/commit answer")
        sh = _obj(d["signed_header"], "signed_header") if "signed_header" in d else d
        return SignedHeader(Header.from_json(sh.get("header")), Commit.from_json(sh.get("commit")))


@dataclass(frozen=True)
class Validator:
    """A validator: its Ed25519 public key and voting power. Its address is sha256(pub_key)[:20]."""

    pub_key: bytes
    power: int

    def __post_init__(self) -> None:
        if not isinstance(self.pub_key, bytes) or len(self.pub_key) != _ED25519_KEY_SIZE:
            raise TrustRootError(f"a validator's Ed25519 public key must be {_ED25519_KEY_SIZE} bytes")
        if isinstance(self.power, bool) or not isinstance(self.power, int) or not 0 < self.power <= _INT64_MAX:
            raise TrustRootError(f"voting power must be a positive int64, got {self.power!r}")

    @property
    def address(self) -> bytes:
        """The 20-byte address CometBFT derives from an Ed25519 key."""
        return hashlib.sha256(self.pub_key).digest()[:_ADDRESS_SIZE]

    def encode(self) -> bytes:
        """SimpleValidator {pub_key = 1: PublicKey {ed25519 = 1}, voting_power = 2}: a leaf of the set's hash."""
        return _pb_message(1, _pb_bytes(1, self.pub_key)) + _pb_varint(2, self.power)


@dataclass(frozen=True)
class VerifiedHeader:
    """What `verify_signed_header` established: this header, with this hash, is signed by the trusted set."""

    chain_id: str
    height: int
    hash: bytes
    app_hash: bytes
    time: Timestamp
    validators_hash: bytes
    signed_power: int
    total_power: int
    signers: tuple[bytes, ...]


class TrustRoot:
    """The chain id and validator set a client trusts, taken from a source it holds locally (never the node).

    Validators are kept in CometBFT's order (voting power descending, then address ascending),
    which is the order the validator-set hash is computed in.
    """

    def __init__(self, chain_id: str, validators: Iterable[Validator]) -> None:
        if not isinstance(chain_id, str) or not chain_id:
            raise TrustRootError("a trust root needs a non-empty chain id")
        vals = sorted(validators, key=lambda v: (-v.power, v.address))
        if not vals:
            raise TrustRootError("a trust root needs at least one validator")
        by_address: dict[bytes, Validator] = {}
        for v in vals:
            if v.address in by_address:
                raise TrustRootError(f"validator {v.address.hex().upper()} is listed twice")
            by_address[v.address] = v
        total = sum(v.power for v in vals)
        if total > MAX_TOTAL_VOTING_POWER:
            raise TrustRootError(f"total voting power {total} exceeds CometBFT's maximum {MAX_TOTAL_VOTING_POWER}")
        self.chain_id = chain_id
        self.validators: tuple[Validator, ...] = tuple(vals)
        self.total_power = total
        self.validators_hash = validator_set_hash(self.validators)
        self._by_address = by_address

    def __repr__(self) -> str:
        return (f"TrustRoot(chain_id={self.chain_id!r}, validators={len(self.validators)}, "
                f"total_power={self.total_power}, validators_hash={self.validators_hash.hex().upper()})")

    def validator(self, address: bytes) -> Validator | None:
        """The trusted validator with this address, or None."""
        return self._by_address.get(address)

    @classmethod
    def from_validator_set(cls, doc: Mapping[str, Any], source: str = "validator set") -> TrustRoot:
        """Build from `{"chain_id": ..., "validators": [{"pub_key": {"type", "value"}, "power"}, ...]}`.

        A genesis document has exactly this shape; entries in the /validators style (`voting_power`
        instead of `power`) are accepted too. An `address` given next to a key must match it.
        """
        if not isinstance(doc, Mapping):
            raise TrustRootError(f"{source}: expected a JSON object, got {type(doc).__name__}")
        chain_id = doc.get("chain_id")
        if not isinstance(chain_id, str) or not chain_id:
            raise TrustRootError(f"{source}: no chain_id")
        raw_vals = doc.get("validators")
        if not raw_vals:
            raise TrustRootError(
                f"{source}: lists no validators (the app may set them at InitChain); "
                "use a trusted validator-set file instead")
        if not isinstance(raw_vals, list):
            raise TrustRootError(f"{source}: validators must be a list")
        vals = [_validator_from_json(raw, f"{source}: validators[{i}]") for i, raw in enumerate(raw_vals)]
        return cls(chain_id, vals)

    @classmethod
    def from_genesis(cls, genesis: Mapping[str, Any]) -> TrustRoot:
        """Build from a parsed genesis.json (its chain_id and validators)."""
        return cls.from_validator_set(genesis, "genesis")

    @classmethod
    def from_genesis_file(cls, path: str | Path) -> TrustRoot:
        """Build from a genesis.json you hold locally (e.g. home/node0/cometbft/config/genesis.json)."""
        return cls.from_validator_set(_read_json(Path(path), "genesis file"), f"genesis file {path}")

    @classmethod
    def from_validator_set_file(cls, path: str | Path) -> TrustRoot:
        """Build from a trusted validator-set file (the shape `to_json` writes; a genesis.json also works)."""
        return cls.from_validator_set(_read_json(Path(path), "validator-set file"), f"validator-set file {path}")

    def to_json(self) -> dict[str, Any]:
        """This trust root as a validator-set document that `from_validator_set` reads back."""
        return {
            "chain_id": self.chain_id,
            "validators_hash": self.validators_hash.hex().upper(),
            "validators": [
                {"address": v.address.hex().upper(),
                 "pub_key": {"type": ED25519_KEY_TYPE, "value": base64.b64encode(v.pub_key).decode()},
                 "power": str(v.power)}
                for v in self.validators
            ],
        }


# ----------------------------------------------------------------------------- hashing and sign bytes

def _cdc_string(s: str) -> bytes:
    # cdcEncode: a gogotypes wrapper message {value = 1}, or nothing at all for an empty value.
    return _pb_bytes(1, s.encode())


def header_hash(h: Header) -> bytes:
    """CometBFT v0.38 `Header.Hash()`: the simple Merkle root over the encoded fields in field order."""
    return simple_merkle_root([
        _pb_varint(1, h.version_block) + _pb_varint(2, h.version_app),
        _cdc_string(h.chain_id),
        _pb_varint(1, h.height),
        h.time.encode(),
        h.last_block_id.encode(),
        _pb_bytes(1, h.last_commit_hash),
        _pb_bytes(1, h.data_hash),
        _pb_bytes(1, h.validators_hash),
        _pb_bytes(1, h.next_validators_hash),
        _pb_bytes(1, h.consensus_hash),
        _pb_bytes(1, h.app_hash),
        _pb_bytes(1, h.last_results_hash),
        _pb_bytes(1, h.evidence_hash),
        _pb_bytes(1, h.proposer_address),
    ])


def validator_set_hash(validators: Sequence[Validator]) -> bytes:
    """CometBFT `ValidatorSet.Hash()` over validators already in set order (power desc, address asc)."""
    return simple_merkle_root([v.encode() for v in validators])


def vote_sign_bytes(chain_id: str, height: int, round_: int, block_id: BlockID, timestamp: Timestamp) -> bytes:
    """The bytes a validator signs for a precommit: length-delimited CanonicalVote (`types.VoteSignBytes`).

    CanonicalVote {type = 1, height = 2 (sfixed64), round = 3 (sfixed64), block_id = 4 (omitted when
    zero), timestamp = 5 (always present), chain_id = 6}.
    """
    body = (_pb_varint(1, _PRECOMMIT_TYPE) + _pb_sfixed64(2, height) + _pb_sfixed64(3, round_)
            + (b"" if block_id.is_zero() else _pb_message(4, block_id.encode()))
            + _pb_message(5, timestamp.encode()) + _pb_bytes(6, chain_id.encode()))
    return encode_uvarint(len(body)) + body


# ----------------------------------------------------------------------------- verification

def verify_signed_header(signed: SignedHeader, trust: TrustRoot, *, height: int | None = None) -> VerifiedHeader:
    """Check that `signed.header` is the block that more than 2/3 of the trusted validators committed.

    Checks, in order: chain id; the expected height (if given); commit height; the recomputed header
    hash against the block ID the commit signs; the header's validators_hash against the trusted
    set; one commit entry per trusted validator; every BlockIDFlagCommit signature (known signer,
    no duplicates, valid Ed25519 over the vote sign bytes); signed power > 2/3 of the total.
    Raises HeaderVerificationError naming the first check that fails.
    """
    header, commit = signed.header, signed.commit
    label = f"header {header.height}"
    if header.chain_id != trust.chain_id:
        raise HeaderVerificationError(
            f"{label} is for chain {header.chain_id!r}, but the trusted chain is {trust.chain_id!r}")
    if height is not None and header.height != height:
        raise HeaderVerificationError(f"asked for the header at height {height}, got {label}")
    if commit.height != header.height:
        raise HeaderVerificationError(f"the commit is for height {commit.height}, not for {label}")
    computed = header_hash(header)
    if computed != commit.block_id.hash:
        raise HeaderVerificationError(
            f"{label}: its fields hash to {computed.hex().upper()} but the commit signs block "
            f"{commit.block_id.hash.hex().upper() or '(none)'}; "
            "the header was altered or does not belong to this commit")
    if header.validators_hash != trust.validators_hash:
        raise HeaderVerificationError(
            f"{label} names validator set {header.validators_hash.hex().upper()}, not the trusted set "
            f"{trust.validators_hash.hex().upper()}: the validator set changed since the trust root, "
            "or the node serves another network")
    if len(commit.signatures) != len(trust.validators):
        raise HeaderVerificationError(
            f"the commit of {label} has {len(commit.signatures)} entries "
            f"for a set of {len(trust.validators)} validators")

    signed_power = 0
    signers: list[bytes] = []
    for i, sig in enumerate(commit.signatures):
        if sig.block_id_flag in (BLOCK_ID_FLAG_ABSENT, BLOCK_ID_FLAG_NIL):
            continue  # no vote, or a vote for no block: it adds no power to this block
        if sig.block_id_flag != BLOCK_ID_FLAG_COMMIT:
            raise HeaderVerificationError(f"commit entry {i} of {label} has unknown block_id_flag {sig.block_id_flag}")
        who = sig.validator_address.hex().upper()
        val = trust.validator(sig.validator_address)
        if val is None:
            raise HeaderVerificationError(f"commit entry {i} of {label} is signed by {who or '(no address)'}, "
                                          "which is not a trusted validator")
        if sig.validator_address in signers:
            raise HeaderVerificationError(f"validator {who} signs the commit of {label} twice")
        if len(sig.signature) != _ED25519_SIG_SIZE:
            raise HeaderVerificationError(
                f"the signature of validator {who} on {label} is {len(sig.signature)} bytes, not {_ED25519_SIG_SIZE}")
        msg = vote_sign_bytes(trust.chain_id, commit.height, commit.round, commit.block_id, sig.timestamp)
        try:
            Ed25519PublicKey.from_public_bytes(val.pub_key).verify(sig.signature, msg)
        except InvalidSignature:
            raise HeaderVerificationError(
                f"the signature of validator {who} (commit entry {i}) on {label} does not verify") from None
        signers.append(sig.validator_address)
        signed_power += val.power

    # CometBFT's rule: strictly more than 2/3 of the total power, in integers.
    if 3 * signed_power <= 2 * trust.total_power:
        raise HeaderVerificationError(
            f"only {signed_power} of {trust.total_power} voting power signed {label} "
            f"({len(signers)} of {len(trust.validators)} validators); more than 2/3 is required")
    return VerifiedHeader(chain_id=header.chain_id, height=header.height, hash=computed, app_hash=header.app_hash,
                          time=header.time, validators_hash=header.validators_hash, signed_power=signed_power,
                          total_power=trust.total_power, signers=tuple(signers))


# ----------------------------------------------------------------------------- JSON helpers

def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise TrustRootError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TrustRootError(f"the {what} {path} is not JSON: {exc}") from exc


def _validator_from_json(raw: object, where: str) -> Validator:
    if not isinstance(raw, Mapping):
        raise TrustRootError(f"{where}: expected an object")
    pk = raw.get("pub_key")
    if not isinstance(pk, Mapping) or not isinstance(pk.get("value"), str):
        raise TrustRootError(f"{where}: pub_key must be an object with type and value")
    if pk.get("type") != ED25519_KEY_TYPE:
        raise TrustRootError(f"{where}: key type {pk.get('type')!r} is not supported (only {ED25519_KEY_TYPE})")
    try:
        pub = base64.b64decode(pk["value"], validate=True)
    except ValueError as exc:
        raise TrustRootError(f"{where}: pub_key value is not base64") from exc
    power_raw = raw.get("power", raw.get("voting_power"))
    try:
        if isinstance(power_raw, bool) or not isinstance(power_raw, int | str):
            raise ValueError
        power = int(power_raw)
    except ValueError:
        raise TrustRootError(f"{where}: power must be an integer, got {power_raw!r}") from None
    try:
        val = Validator(pub, power)
    except TrustRootError as exc:
        raise TrustRootError(f"{where}: {exc}") from None
    addr = raw.get("address")
    if addr not in (None, "") and (not isinstance(addr, str) or addr.upper() != val.address.hex().upper()):
        raise TrustRootError(f"{where}: address {addr!r} does not belong to its key "
                             f"(which has address {val.address.hex().upper()})")
    return val


def _obj(v: object, what: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise HeaderVerificationError(f"malformed signed header: {what} must be an object, got {type(v).__name__}")
    return v


def _str(v: object, what: str) -> str:
    if not isinstance(v, str):
        raise HeaderVerificationError(f"malformed signed header: {what} must be a string")
    return v


def _int(v: object, what: str) -> int:
    # CometBFT writes int64/uint64 as decimal strings and smaller integers as JSON numbers.
    if isinstance(v, bool):
        raise HeaderVerificationError(f"malformed signed header: {what} must be an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]{1,20}", v):
        return int(v)
    raise HeaderVerificationError(f"malformed signed header: {what} must be an integer, got {v!r}")


def _uint(v: object, what: str, limit: int) -> int:
    n = _int(v, what)
    if not 0 <= n <= limit:
        raise HeaderVerificationError(f"malformed signed header: {what} {n} is out of range")
    return n


def _height(v: object, what: str) -> int:
    n = _int(v, what)
    if not 0 < n <= _INT64_MAX:
        raise HeaderVerificationError(f"malformed signed header: {what} {n} is not a positive int64")
    return n


def _hexbytes(v: object, what: str, sizes: tuple[int, ...] | None) -> bytes:
    if v is None:
        v = ""
    if not isinstance(v, str):
        raise HeaderVerificationError(f"malformed signed header: {what} must be a hex string")
    try:
        out = bytes.fromhex(v)
    except ValueError:
        raise HeaderVerificationError(f"malformed signed header: {what} is not hex") from None
    if sizes is not None and len(out) not in sizes:
        raise HeaderVerificationError(
            f"malformed signed header: {what} is {len(out)} bytes, expected {' or '.join(map(str, sizes))}")
    return out


def _block_id(v: object, what: str) -> BlockID:
    d = _obj(v, what)
    parts = _obj(d.get("parts", {}), f"{what}.parts")
    return BlockID(hash=_hexbytes(d.get("hash"), f"{what}.hash", (0, _HASH_SIZE)),
                   parts_total=_uint(parts.get("total", 0), f"{what}.parts.total", _UINT32_MAX),
                   parts_hash=_hexbytes(parts.get("hash"), f"{what}.parts.hash", (0, _HASH_SIZE)))
