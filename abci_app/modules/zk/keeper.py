"""The zk keeper: reads of registered circuits, proof verdicts and the module's counters."""

from __future__ import annotations

import base64
import zlib
from typing import cast

from fedledger.abci_app.context import Reader
from fedledger.abci_app.modules.zk import keys
from fedledger.abci_app.modules.zk.records import CircuitRecord, ProofRecord, ZkMeta
from fedledger.abci_app.records import load_record

__all__ = ["circuit_bytes", "find_circuit", "find_proof", "meta"]


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
