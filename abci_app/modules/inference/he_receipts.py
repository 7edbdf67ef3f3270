"""A node's signed receipt for one CKKS stage: the record both the client and the chain check.

The node signs RECEIPT_DOMAIN + canonical JSON of every field but `sig` with its DID key. The
receipt names the ciphertexts by sha256 only, so the chain learns which node turned which
ciphertext into which, under which evaluation context, and never a plaintext value. The client
side (sdk/he/records.py) signs and parses with these same bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.didkey import DIDKeyError, public_key_from_did
from fedledger.abci_app.errors import Code, TxError

__all__ = ["RECEIPT_DOMAIN", "HEReceipt", "parse_he_receipt", "receipt_signing_bytes"]

RECEIPT_DOMAIN = b"fedledger/he-receipt/v1\n"
HEX64 = re.compile(r"[0-9a-f]{64}")
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SIG = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True)
class HEReceipt:
    """A node's signed statement that it turned the input ciphertext into the output one for a request."""

    request_hash: str
    request_id: str
    model: str
    version: int
    stage: int
    input_sha256: str
    output_sha256: str
    eval_context_sha256: str
    node: str  # the node's did:key
    sig: str

    def unsigned(self) -> dict[str, Any]:
        """Every field but sig."""
        fields = asdict(self)
        del fields["sig"]
        return fields

    def to_json(self) -> dict[str, Any]:
        """All fields, JSON-ready."""
        return asdict(self)

    def hash(self) -> str:
        """sha256 hex of the whole signed receipt's canonical JSON."""
        return hashlib.sha256(canonical_bytes(asdict(self))).hexdigest()


def _invalid(why: str) -> TxError:
    """A receipt that is malformed or whose signature does not verify, as the chain refuses it."""
    return TxError(Code.INFERENCE_RECEIPT, why)


def receipt_signing_bytes(unsigned: Mapping[str, Any]) -> bytes:
    """The exact bytes a node signs for a receipt."""
    return RECEIPT_DOMAIN + canonical_bytes(dict(unsigned))


def _str(raw: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _invalid(f"field {name!r} is missing or malformed")
    return value


def _int(raw: Mapping[str, Any], name: str) -> int:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 31:
        raise _invalid(f"field {name!r} must be a non-negative int")
    return value


def parse_he_receipt(raw: Any) -> HEReceipt:
    """Validate a receipt's fields and its signature; TxError(INFERENCE_RECEIPT) saying what is wrong."""
    fields = HEReceipt.__dataclass_fields__
    if not isinstance(raw, Mapping) or set(raw) != set(fields):
        raise _invalid(f"a receipt has exactly the fields {sorted(fields)}")
    node = raw.get("node")
    if not isinstance(node, str):
        raise _invalid("field 'node' must be a did:key")
    try:
        public_key = public_key_from_did(node)
    except DIDKeyError as exc:
        raise _invalid(f"field 'node': {exc}") from None
    receipt = HEReceipt(
        request_hash=_str(raw, "request_hash", HEX64), request_id=_str(raw, "request_id", REQUEST_ID),
        model=_str(raw, "model", NAME), version=_int(raw, "version"), stage=_int(raw, "stage"),
        input_sha256=_str(raw, "input_sha256", HEX64), output_sha256=_str(raw, "output_sha256", HEX64),
        eval_context_sha256=_str(raw, "eval_context_sha256", HEX64), node=node, sig=_str(raw, "sig", SIG))
    try:
        public_key.verify(bytes.fromhex(receipt.sig), receipt_signing_bytes(receipt.unsigned()))
    except InvalidSignature:
        raise _invalid(f"receipt signature does not verify for {node}") from None
    return receipt
