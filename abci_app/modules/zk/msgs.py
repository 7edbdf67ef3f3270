"""The zk module's tx bodies and their stateless validation (sizes, encodings, the node's signature)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.credentials import key_of_did
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.fields import HEX128, ID_RE, bounded_inflate, int_field, require_fields, str_field
from fedledger.abci_app.modules.zk.instances import felt_value

__all__ = ["INPUT_MODES", "MAX_INSTANCES", "MAX_PROOF_BYTES", "MAX_SETTINGS_BYTES", "MAX_VK_BYTES", "PARSERS",
           "PROOF_DOMAIN", "RegisterZkCircuit", "SubmitInferenceProof", "proof_digest", "proof_statement"]

INPUT_MODES = ("hashed", "private")
MAX_SETTINGS_BYTES = 1024 * 1024  # uncompressed (a CNN's settings list its einsum shapes: ~65 KB)
MAX_VK_BYTES = 4 * 1024 * 1024  # uncompressed; the compressed form must also fit a 16 KiB tx
MAX_PROOF_BYTES = 12 * 1024
MAX_INSTANCES = 4097
PROOF_DOMAIN = b"fedledger/zk-proof/v1\n"  # what a node signs: this, then the canonical proof statement
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_DID = re.compile(r"^did:key:z[1-9A-HJ-NP-Za-km-z]{20,100}$")


def _b64(body: dict[str, Any], name: str, limit: int) -> bytes:
    value = body.get(name)
    if not isinstance(value, str) or len(value) > (limit * 4) // 3 + 8:
        raise TxError(Code.INVALID_BODY, f"{name} must be base64 text of at most {limit} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise TxError(Code.INVALID_BODY, f"{name} is not valid base64") from None


@dataclass(frozen=True)
class RegisterZkCircuit:
    """The owner or aggregator of a task registers the ezkl circuit (settings + vk) of one of its versions."""

    task_id: str
    version: int
    input_mode: str
    settings: bytes  # canonical settings JSON
    vk: bytes  # uncompressed vk bytes
    settings_compressed: bytes  # what is stored: zlib-compressed, as sent
    vk_compressed: bytes

    @staticmethod
    def parse(body: dict[str, Any]) -> RegisterZkCircuit:
        """Validate a register_zk_circuit body: settings and vk, each base64 of zlib-compressed bytes."""
        require_fields(body, ("task_id", "version", "input_mode", "settings", "vk"))
        if body["input_mode"] not in INPUT_MODES:
            raise TxError(Code.INVALID_BODY, f"input_mode must be one of {list(INPUT_MODES)}")
        vk_compressed = _b64(body, "vk", 16 * 1024)
        settings_compressed = _b64(body, "settings", 16 * 1024)
        return RegisterZkCircuit(task_id=str_field(body, "task_id", ID_RE, "a task id"),
                                 version=int_field(body, "version", 1, 10**12), input_mode=body["input_mode"],
                                 settings=bounded_inflate(settings_compressed, MAX_SETTINGS_BYTES, "settings"),
                                 vk=bounded_inflate(vk_compressed, MAX_VK_BYTES, "vk"),
                                 settings_compressed=settings_compressed, vk_compressed=vk_compressed)


def proof_digest(proof: bytes, instances: list[str]) -> str:
    """sha256 identifying a proof (its bytes and its public instances), for replay protection."""
    return hashlib.sha256(canonical_bytes({"instances": instances, "proof": proof.hex()})).hexdigest()


def proof_statement(task_id: str, version: int, request_id: str, input_mode: str, digest: str) -> bytes:
    """The bytes a node signs to put its name to a proof: an invalid one then stands on its record."""
    return PROOF_DOMAIN + canonical_bytes({"input_mode": input_mode, "proof_sha256": digest, "request_id": request_id,
                                           "task_id": task_id, "version": version})


@dataclass(frozen=True)
class SubmitInferenceProof:
    """A node's ezkl proof of one inference, signed by the node, for the chain to verify and record."""

    task_id: str
    version: int
    request_id: str
    input_mode: str
    proof: bytes  # the raw Halo2 proof bytes
    instances: tuple[str, ...]  # public instances, ezkl's little-endian hex field elements
    node: str  # the proving node's DID
    digest: str

    @staticmethod
    def parse(body: dict[str, Any]) -> SubmitInferenceProof:
        """Validate shape, encodings and the node's signature over the proof statement."""
        require_fields(body, ("task_id", "version", "request_id", "input_mode", "proof", "instances", "node",
                              "node_signature"))
        if body["input_mode"] not in INPUT_MODES:
            raise TxError(Code.INVALID_BODY, f"input_mode must be one of {list(INPUT_MODES)}")
        task_id = str_field(body, "task_id", ID_RE, "a task id")
        version = int_field(body, "version", 1, 10**12)
        request_id = str_field(body, "request_id", _REQUEST_ID, "1-128 characters of [A-Za-z0-9._:-]")
        proof = _b64(body, "proof", MAX_PROOF_BYTES)
        if not proof:
            raise TxError(Code.INVALID_BODY, "proof is empty")
        raw = body["instances"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_INSTANCES:
            raise TxError(Code.INVALID_BODY, f"instances must be a list of 1-{MAX_INSTANCES} field elements")
        for item in raw:
            felt_value(item)
        node = str_field(body, "node", _DID, "a did:key")
        sig = str_field(body, "node_signature", HEX128, "128 hex characters (an Ed25519 signature)")
        digest = proof_digest(proof, list(raw))
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_of_did(node)))
            key.verify(bytes.fromhex(sig), proof_statement(task_id, version, request_id, body["input_mode"], digest))
        except ValueError:
            raise TxError(Code.INVALID_BODY, "node is not an Ed25519 did:key") from None
        except InvalidSignature:
            raise TxError(Code.BAD_SIGNATURE, "node_signature does not verify for the node over this proof "
                                              "statement (task, version, request, mode, proof digest)") from None
        return SubmitInferenceProof(task_id=task_id, version=version, request_id=request_id,
                                    input_mode=body["input_mode"], proof=proof, instances=tuple(raw), node=node,
                                    digest=digest)


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "register_zk_circuit": RegisterZkCircuit.parse,
    "submit_inference_proof": SubmitInferenceProof.parse,
}
