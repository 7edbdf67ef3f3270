"""The zk keeper: reads of circuits, verdicts and counters; circuit and proof checks other modules call."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from typing import cast

from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.zk import keys
from fedledger.abci_app.modules.zk.circuit import CircuitFacts, circuit_facts
from fedledger.abci_app.modules.zk.instances import decode_instances
from fedledger.abci_app.modules.zk.params import params
from fedledger.abci_app.modules.zk.records import CircuitRecord, ProofRecord, ZkMeta
from fedledger.abci_app.modules.zk.verifier import check_pinned
from fedledger.abci_app.records import load_record

__all__ = ["accepted_circuit", "circuit_bytes", "decoded_instances", "find_circuit", "find_proof", "meta",
           "verify_with_pinned_srs"]


def meta(view: Reader) -> ZkMeta:
    """The module's counters (zeros before anything was recorded)."""
    rec = load_record(view, keys.META_KEY)
    return cast(ZkMeta, rec) if rec is not None else {"circuits": 0, "proofs": 0, "invalid": 0}


def find_circuit(view: Reader, task_id: str, version: int, input_mode: str) -> CircuitRecord | None:
    """The circuit registered for a version and input mode, if any."""
    return cast("CircuitRecord | None", load_record(view, keys.circuit_key(task_id, version, input_mode)))


def circuit_bytes(rec: CircuitRecord) -> tuple[bytes, bytes]:
    """(canonical settings, vk) of a circuit record, uncompressed (a record was checked when registered)."""
    return zlib.decompress(base64.b64decode(rec["settings_zb64"])), zlib.decompress(base64.b64decode(rec["vk_zb64"]))


def find_proof(view: Reader, task_id: str, request_id: str) -> ProofRecord | None:
    """The verdict recorded for a request's proof, if any."""
    return cast("ProofRecord | None", load_record(view, keys.proof_key(task_id, request_id)))


def accepted_circuit(view: Reader, settings: bytes, input_mode: str) -> CircuitFacts:
    """The facts of a circuit this chain can verify (TxError ZK_SRS | ZK_CIRCUIT | ZK_VERSION_MISMATCH if not)."""
    par = params(view)
    if not par["srs_sha256"]:
        raise TxError(Code.ZK_SRS, "this chain pins no SRS (genesis section zk), so it can verify no proof")
    facts = circuit_facts(settings, input_mode)
    if facts.logrows > par["srs_logrows"]:
        raise TxError(Code.ZK_SRS, f"the circuit needs 2^{facts.logrows} rows, the pinned SRS has "
                                   f"2^{par['srs_logrows']}: rebuild it smaller")
    return facts


def decoded_instances(settings: bytes, input_mode: str, instances: Sequence[str]) -> tuple[str | None, list[int]]:
    """(input hash, signed outputs) of a proof's instances (TxError ZK_PROOF_INVALID if they do not fit)."""
    return decode_instances(instances, circuit_facts(settings, input_mode))


def verify_with_pinned_srs(view: Reader, settings: bytes, vk: bytes, instances: Sequence[str],
                           proof: bytes) -> tuple[bool, str | None]:
    """ezkl's native verdict on a proof, with the SRS the chain pins; RuntimeError (a halt) if this validator lacks it.

    The reason string is ezkl's own text: log it, never store it (it may differ between machines).
    """
    verifier = check_pinned(params(view)["srs_sha256"])
    return verifier.verify(settings, vk, {"instances": [list(instances)], "proof": list(proof)})
