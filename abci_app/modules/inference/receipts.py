"""Signed inference receipts: their fields, the bytes a node signs, their hash, and when two outputs agree.

A receipt is a node's signed statement "for request R of task T I ran version V (segment S) on the
input with hash I and got the output with hash O, at chain height H". Clients collect them from
the nodes they asked, the chain tallies them (handlers.py), and two of one node's receipts for the
same input that disagree are a fraud proof. This file is shared by both sides: nodes sign
`signing_bytes`, the chain and clients call `parse_receipt` (which checks the signature).

Agreement is decided on the canonical quantized output `q` (sdk/inference/canonical.py): every
output value x becomes round(x * 2^QUANT_BITS) as an integer, so the chain compares integers
only. Two outputs agree when their hashes are equal, or when both carry `q` of the same length and
no component differs by more than TOLERANCE steps (one step is 2^-8 = 0.0039): honest nodes on
different CPUs differ by float rounding in the last bits, which can move a value across one
rounding boundary but never two. Outputs too large to carry (over MAX_Q = 256 values) are compared by
hash only, which needs bit-identical results (same runtime build); see docs/INFERENCE.md.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.credentials import key_of_did
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.fields import HEX64, ID_RE

__all__ = ["MAX_Q", "QUANT_BITS", "RECEIPT_DOMAIN", "RECEIPT_FIELDS", "REQUEST_ID", "TOLERANCE", "Receipt", "agree",
           "parse_receipt", "receipt_hash", "request_hash", "signing_bytes"]

RECEIPT_DOMAIN = b"fedledger-inference-receipt-v1\n"
QUANT_BITS = 8
TOLERANCE = 1
MAX_Q = 256  # keeps a receipt under ~2 KB, so a request's k receipts fit one tx (MAX_TX_BYTES)
_Q_LIMIT = 2**31

_SIG = re.compile(r"^[0-9a-f]{128}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_SEGMENT = re.compile(r"^(full|[0-9]{1,2}/[0-9]{1,2})$")
_DID = re.compile(r"^did:key:z[1-9A-HJ-NP-Za-km-z]{20,80}$")
RECEIPT_FIELDS = ("task_id", "version", "segment", "request_id", "input_hash", "output_hash", "q", "node",
                  "height", "prev", "sig")


@dataclass(frozen=True)
class Receipt:
    """One node's signed answer to one request (see the module docstring)."""

    task_id: str
    version: int
    segment: str  # "full", or "i/n": stage i (1-based) of an n-stage split of the version's graph
    request_id: str  # chosen by the client, so two askings of one input are two requests
    input_hash: str  # sha256 hex of the canonical input tensors
    output_hash: str  # sha256 hex of the canonical quantized output
    q: tuple[int, ...] | None  # the quantized output itself, when it has at most MAX_Q values
    node: str  # the node's did:key
    height: int  # the last committed height the node had seen
    prev: str  # sha256 hex of the previous hop's receipt in a split pipeline, "" for none
    sig: str  # hex Ed25519 signature over signing_bytes by the node's key

    def unsigned(self) -> dict[str, Any]:
        """Every field but the signature, as canonical JSON values."""
        return {"task_id": self.task_id, "version": self.version, "segment": self.segment,
                "request_id": self.request_id, "input_hash": self.input_hash, "output_hash": self.output_hash,
                "q": list(self.q) if self.q is not None else None, "node": self.node, "height": self.height,
                "prev": self.prev}

    def to_json(self) -> dict[str, Any]:
        """The receipt as it travels (the OIP response parameter, the report tx, the content store)."""
        return {**self.unsigned(), "sig": self.sig}

    @property
    def hash(self) -> str:
        """sha256 hex of the whole signed receipt: what the next hop's `prev` and the batch's Merkle root use."""
        return receipt_hash(self.to_json())


def signing_bytes(unsigned: Mapping[str, Any]) -> bytes:
    """The bytes a node signs: a domain tag, then the canonical JSON of every field but `sig`."""
    return RECEIPT_DOMAIN + canonical_bytes(dict(unsigned))


def receipt_hash(receipt: Mapping[str, Any]) -> str:
    """sha256 hex of a signed receipt's canonical JSON."""
    return hashlib.sha256(canonical_bytes(dict(receipt))).hexdigest()


def _bad(why: str) -> TxError:
    return TxError(Code.INVALID_BODY, f"receipt: {why}")


def _int(raw: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _bad(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _str(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not pattern.match(value):
        raise _bad(f"{name} must be {what}, got {str(value)[:80]!r}")
    return value


def parse_receipt(raw: Any) -> Receipt:
    """Validate a receipt's shape and signature; TxError(INVALID_BODY or BAD_SIGNATURE) says what is wrong."""
    if not isinstance(raw, Mapping) or set(raw) != set(RECEIPT_FIELDS):
        got = sorted(raw) if isinstance(raw, Mapping) else type(raw).__name__
        raise _bad(f"a receipt is an object with exactly the fields {list(RECEIPT_FIELDS)}, got {got}")
    q_raw = raw["q"]
    q: tuple[int, ...] | None = None
    if q_raw is not None:
        if (not isinstance(q_raw, list) or not 1 <= len(q_raw) <= MAX_Q
                or not all(isinstance(v, int) and not isinstance(v, bool) and -_Q_LIMIT <= v <= _Q_LIMIT
                           for v in q_raw)):
            raise _bad(f"q must be null or a list of 1-{MAX_Q} integers in [-2^31, 2^31]")
        q = tuple(q_raw)
    prev = raw["prev"]
    if not isinstance(prev, str) or (prev and not HEX64.match(prev)):
        raise _bad("prev must be \"\" or a sha256 hex digest")
    rec = Receipt(
        task_id=_str(raw, "task_id", ID_RE, "a task id"),
        version=_int(raw, "version", 0, 2**40),
        segment=_str(raw, "segment", _SEGMENT, "\"full\" or \"i/n\""),
        request_id=_str(raw, "request_id", REQUEST_ID, "1-64 characters of [A-Za-z0-9._:-]"),
        input_hash=_str(raw, "input_hash", HEX64, "a sha256 hex digest"),
        output_hash=_str(raw, "output_hash", HEX64, "a sha256 hex digest"),
        q=q, node=_str(raw, "node", _DID, "a did:key"),
        height=_int(raw, "height", 0, 2**62), prev=prev,
        sig=_str(raw, "sig", _SIG, "a 64-byte Ed25519 signature in lower-case hex"),
    )
    if rec.segment != "full":
        stage, stages = (int(p) for p in rec.segment.split("/"))
        if not 1 <= stage <= stages or stages < 2:
            raise _bad(f"segment {rec.segment!r} must be i/n with 1 <= i <= n and n >= 2")
    try:
        key = _key_of(rec.node)
        Ed25519PublicKey.from_public_bytes(key).verify(bytes.fromhex(rec.sig), signing_bytes(rec.unsigned()))
    except ValueError as exc:
        raise _bad(f"node {rec.node[:40]} is not an Ed25519 did:key ({exc})") from exc
    except InvalidSignature as exc:
        raise TxError(Code.BAD_SIGNATURE, f"receipt of {rec.node[:40]}… for request {rec.request_id!r}: "
                                          "the signature does not verify for the node's key") from exc
    return rec


@functools.lru_cache(maxsize=4096)
def _key_of(did: str) -> bytes:
    # A pure function of the DID (base58 decoding costs as much as the signature check): cached.
    return bytes.fromhex(key_of_did(did))


def agree(a: Receipt, b: Receipt) -> bool:
    """Whether two receipts' outputs are the same answer (see the module docstring)."""
    if a.output_hash == b.output_hash:
        return True
    if a.q is None or b.q is None or len(a.q) != len(b.q):
        return False
    return all(abs(x - y) <= TOLERANCE for x, y in zip(a.q, b.q, strict=True))


def request_hash(receipts: Sequence[Receipt]) -> str:
    """sha256 hex over a request's receipt hashes, sorted: the request's identity on chain."""
    return hashlib.sha256(b"".join(bytes.fromhex(h) for h in sorted(r.hash for r in receipts))).hexdigest()
