"""zkDPS in the federation module: a task may require with each commit an ezkl proof that the update is within its clip.

create_task's optional `norm_proof` {clip, dim, settings, vk} (settings and vk zlib + base64, built by
sdk/compliance) fixes the task's norm circuit; it is stored under its own key. commit_contribution
then must carry `norm_proof` {proof (base64), instances}. CheckTx checks the shapes and the
instances (cheap); FinalizeBlock runs ezkl's native verifier with the chain's pinned SRS (through the
zk keeper) on every validator and refuses a commit whose proof ezkl rejects or whose public output
is not 1 (= "within bound"). The contribution records the proof's update hash (Poseidon of the
quantized, unmasked update) and norm_proof "verified".
"""

from __future__ import annotations

import base64
import binascii
import logging
import zlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.federation import keys
from fedledger.abci_app.modules.fields import bounded_inflate, int_value, require_fields
from fedledger.abci_app.modules.zk.keeper import accepted_circuit, decoded_instances, verify_with_pinned_srs
from fedledger.abci_app.records import load_record, store_record

__all__ = ["MAX_PROOF_BYTES", "NormCircuitParam", "NormCircuitRecord", "NormProofBody", "check_norm_proof",
           "find_norm_circuit", "parse_norm_circuit", "parse_norm_proof", "store_norm_circuit"]

log = logging.getLogger("fedledger.federation.norm_proof")

MAX_PROOF_BYTES = 8192  # ezkl 23 proofs of the norm circuit are 3,840 bytes (measured, d = 16 to 4,810)
MAX_CIRCUIT_BYTES = 1 << 20  # decompressed settings or vk; a zlib bomb stops here
_MODE = "hashed"


class NormCircuitRecord(TypedDict):
    """`fl/normcircuit/<task>`: the circuit a task's commits prove their clip bound against."""

    clip: str
    dim: int
    settings_zb64: str
    vk_zb64: str


@dataclass(frozen=True)
class NormCircuitParam:
    """A parsed create_task `norm_proof` field."""

    clip: str
    dim: int
    settings: bytes
    vk: bytes
    settings_zb64: str
    vk_zb64: str


@dataclass(frozen=True)
class NormProofBody:
    """A parsed commit_contribution `norm_proof` field."""

    proof: bytes
    instances: tuple[str, ...]


def _inflate(text: Any, name: str) -> bytes:
    if not isinstance(text, str):
        raise TxError(Code.NORM_PROOF_INVALID, f"norm_proof.{name} must be zlib-compressed bytes in base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise TxError(Code.NORM_PROOF_INVALID, f"norm_proof.{name} must be zlib-compressed bytes in base64") from None
    return bounded_inflate(data, MAX_CIRCUIT_BYTES, f"norm_proof.{name}", Code.NORM_PROOF_INVALID)


def parse_norm_circuit(raw: Any) -> NormCircuitParam:
    """Validate create_task's `norm_proof` (stateless): a positive decimal clip, a dimension, settings and vk."""
    if not isinstance(raw, dict):
        raise TxError(Code.NORM_PROOF_INVALID, "norm_proof must be an object {clip, dim, settings, vk}")
    require_fields(raw, {"clip", "dim", "settings", "vk"}, what="norm_proof")
    clip = raw["clip"]
    try:
        ok = isinstance(clip, str) and len(clip) <= 32 and Decimal(clip).is_finite() and Decimal(clip) > 0
    except InvalidOperation:
        ok = False
    if not ok:
        raise TxError(Code.NORM_PROOF_INVALID, "norm_proof.clip must be a positive decimal string such as '1.0'")
    return NormCircuitParam(clip=clip, dim=int_value(raw["dim"], "norm_proof.dim", 1, 1 << 24),
                            settings=_inflate(raw["settings"], "settings"), vk=_inflate(raw["vk"], "vk"),
                            settings_zb64=raw["settings"], vk_zb64=raw["vk"])


def store_norm_circuit(view: Reader, state: Writer | None, task_id: str, param: NormCircuitParam) -> None:
    """Check that the chain can verify the circuit (pinned SRS, ezkl release, one boolean output) and store it."""
    facts = accepted_circuit(view, param.settings, _MODE)
    if facts.outputs != 1 or facts.output_scale != 0:
        raise TxError(Code.NORM_PROOF_INVALID, "a norm circuit has exactly one public output, the 0/1 verdict")
    if state is not None:
        rec: NormCircuitRecord = {"clip": param.clip, "dim": param.dim, "settings_zb64": param.settings_zb64,
                                  "vk_zb64": param.vk_zb64}
        store_record(state, keys.norm_circuit_key(task_id), dict(rec))


def find_norm_circuit(view: Reader, task_id: str) -> NormCircuitRecord | None:
    """The task's norm circuit, if it requires norm proofs."""
    rec = load_record(view, keys.norm_circuit_key(task_id))
    return rec  # type: ignore[return-value]


def parse_norm_proof(raw: Any) -> NormProofBody | None:
    """Validate commit_contribution's `norm_proof` (stateless); None when the field is absent or null."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TxError(Code.NORM_PROOF_INVALID, "norm_proof must be an object {proof, instances}")
    require_fields(raw, {"proof", "instances"}, what="norm_proof")
    try:
        proof = base64.b64decode(raw["proof"], validate=True) if isinstance(raw["proof"], str) else b""
    except (binascii.Error, ValueError):
        proof = b""
    if not 0 < len(proof) <= MAX_PROOF_BYTES:
        raise TxError(Code.NORM_PROOF_INVALID, f"norm_proof.proof must be 1 to {MAX_PROOF_BYTES} bytes in base64")
    inst = raw["instances"]
    if not isinstance(inst, list) or not 1 <= len(inst) <= 8 or not all(isinstance(i, str) for i in inst):
        raise TxError(Code.NORM_PROOF_INVALID, "norm_proof.instances must be a list of ezkl field elements")
    return NormProofBody(proof=proof, instances=tuple(inst))


def check_norm_proof(view: Reader, task_id: str, body: NormProofBody | None, execute: bool) -> str | None:
    """The verified update hash of a commit to `task_id`, None if the task requires no norm proof.

    Refuses (NORM_PROOF_MISSING / NORM_PROOF_INVALID) a missing proof, one for a task that takes
    none, instances that do not fit, an output other than 1, and (when `execute`, i.e. in
    FinalizeBlock) a proof ezkl rejects for the task's vk.
    """
    circuit = find_norm_circuit(view, task_id)
    if circuit is None:
        if body is not None:
            raise TxError(Code.NORM_PROOF_INVALID, f"task {task_id!r} requires no norm proof: send norm_proof null")
        return None
    if body is None:
        raise TxError(Code.NORM_PROOF_MISSING, f"task {task_id!r} requires a proof that the update is within its clip "
                                               f"bound {circuit['clip']} (norm_proof); prove it with sdk.compliance")
    settings = zlib.decompress(base64.b64decode(circuit["settings_zb64"]))
    try:
        update_hash, outputs = decoded_instances(settings, _MODE, body.instances)
    except TxError as exc:
        raise TxError(Code.NORM_PROOF_INVALID, f"norm_proof: {exc.log}") from None
    if outputs != [1]:
        raise TxError(Code.NORM_PROOF_INVALID, f"norm_proof's public output is {outputs}, not [1]: the proof says "
                                               f"the update is NOT within the clip bound {circuit['clip']}")
    if execute:
        vk = zlib.decompress(base64.b64decode(circuit["vk_zb64"]))
        ok, detail = verify_with_pinned_srs(view, settings, vk, body.instances, body.proof)
        if not ok:
            log.info("norm proof for task %s rejected by ezkl: %s", task_id, detail)
            raise TxError(Code.NORM_PROOF_INVALID, f"ezkl's verifier rejects the norm proof for task {task_id!r}'s "
                                                   "circuit (forged, or made for another update or bound)")
    assert update_hash is not None  # a hashed-input circuit always exposes it
    return update_hash
