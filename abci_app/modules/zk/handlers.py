"""The zk module's handlers: register a version's circuit; verify a node's inference proof and record the verdict.

A proof that ezkl rejects is not a refused tx: it is recorded with verdict "invalid" against the
node that signed it, so a lying node stands on record. Txs are refused (nothing written but the
nonce) only for what the submitter can see before sending: no such circuit, an unknown node, a
replay. Verification runs in FinalizeBlock only (CheckTx keeps its cheap checks; a block's
proposer cannot skip it because every validator re-runs it).
"""

from __future__ import annotations

import base64
import hashlib
import logging

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.federation.keeper import find_version, load_task
from fedledger.abci_app.modules.inference.keeper import find_node_by_did
from fedledger.abci_app.modules.zk import keys
from fedledger.abci_app.modules.zk.circuit import circuit_facts
from fedledger.abci_app.modules.zk.instances import decode_instances
from fedledger.abci_app.modules.zk.keeper import circuit_bytes, find_circuit, find_proof, meta
from fedledger.abci_app.modules.zk.msgs import RegisterZkCircuit, SubmitInferenceProof
from fedledger.abci_app.modules.zk.params import params
from fedledger.abci_app.modules.zk.records import CircuitRecord, ProofRecord
from fedledger.abci_app.modules.zk.verifier import check_pinned
from fedledger.abci_app.records import load_record, store_record

__all__ = ["HANDLERS"]

log = logging.getLogger("fedledger.zk")


def register_circuit(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                     msg: RegisterZkCircuit) -> list[Event]:
    """The task's owner or aggregator stores an existing version's circuit (settings + vk), once per input mode."""
    par = params(view)
    if not par["srs_sha256"]:
        raise TxError(Code.ZK_SRS, "this chain pins no SRS (genesis section zk), so it can verify no proof")
    task = load_task(view, msg.task_id)
    if signer not in (task["owner"], task["aggregator"]):
        raise TxError(Code.UNAUTHORIZED, f"only the owner or the aggregator of task {msg.task_id!r} registers its "
                                         "zk circuits")
    version = find_version(view, msg.task_id, msg.version)
    if version is None:
        raise TxError(Code.NOT_FOUND, f"task {msg.task_id!r} has no version {msg.version}")
    facts = circuit_facts(msg.settings, msg.input_mode)
    if facts.logrows > par["srs_logrows"]:
        raise TxError(Code.ZK_SRS, f"the circuit needs 2^{facts.logrows} rows, the pinned SRS has "
                                   f"2^{par['srs_logrows']}: rebuild it smaller")
    if find_circuit(view, msg.task_id, msg.version, msg.input_mode) is not None:
        raise TxError(Code.ZK_CIRCUIT, f"version {msg.version} of {msg.task_id!r} already has a "
                                       f"{msg.input_mode} circuit; a circuit is never replaced")
    vk_sha = hashlib.sha256(msg.vk).hexdigest()
    settings_sha = hashlib.sha256(msg.settings).hexdigest()
    if state is not None:
        artifact = version.get("artifact")
        rec: CircuitRecord = {
            "task_id": msg.task_id, "version": msg.version, "input_mode": msg.input_mode,  # type: ignore[typeddict-item]
            "settings_zb64": base64.b64encode(msg.settings_compressed).decode("ascii"),
            "settings_sha256": settings_sha,
            "vk_zb64": base64.b64encode(msg.vk_compressed).decode("ascii"), "vk_sha256": vk_sha,
            "artifact_sha256": artifact["sha256"] if artifact else None, "logrows": facts.logrows,
            "outputs": facts.outputs, "registrant": signer, "height": ctx.height}
        store_record(state, keys.circuit_key(msg.task_id, msg.version, msg.input_mode), dict(rec))
        m = meta(view)
        m["circuits"] += 1
        store_record(state, keys.META_KEY, dict(m))
    return [fl_event("register_zk_circuit", signer, task=msg.task_id, version=msg.version, mode=msg.input_mode,
                     vk_sha256=vk_sha, settings_sha256=settings_sha)]


def submit_proof(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                 msg: SubmitInferenceProof) -> list[Event]:
    """Verify the proof against the version's registered vk with ezkl's native verifier; record the verdict."""
    if find_version(view, msg.task_id, msg.version) is None:
        raise TxError(Code.NOT_FOUND, f"task {msg.task_id!r} has no version {msg.version}")
    circuit = find_circuit(view, msg.task_id, msg.version, msg.input_mode)
    if circuit is None:
        raise TxError(Code.ZK_CIRCUIT, f"version {msg.version} of {msg.task_id!r} has no registered "
                                       f"{msg.input_mode} circuit: register_zk_circuit first")
    if find_node_by_did(view, msg.node) is None:
        raise TxError(Code.INFERENCE_NODE, f"{msg.node[:48]}… is not a registered inference node")
    if find_proof(view, msg.task_id, msg.request_id) is not None:
        raise TxError(Code.ZK_REPLAY, f"request {msg.request_id!r} of {msg.task_id!r} already has a proof verdict")
    if load_record(view, keys.digest_key(msg.digest)) is not None:
        raise TxError(Code.ZK_REPLAY, "this proof was already submitted (under another request id)")
    if state is None:
        return []  # CheckTx: the ezkl check runs in FinalizeBlock, on every validator
    settings, vk = circuit_bytes(circuit)
    facts = circuit_facts(settings, circuit["input_mode"])
    verdict, reason = "invalid", None
    input_hash: str | None = None
    outputs: list[int] | None = None
    try:
        input_hash, outputs = decode_instances(msg.instances, facts)
    except TxError as exc:
        reason = exc.log
    if reason is None:
        # Raises (halts this validator) when it holds no SRS or the wrong one: never a silent skip.
        verifier = check_pinned(params(view)["srs_sha256"])
        ok, detail = verifier.verify(settings, vk,
                                     {"instances": [list(msg.instances)], "proof": list(msg.proof)})
        verdict = "valid" if ok else "invalid"
        if not ok:
            # ezkl's own message stays out of state: it is not part of any spec and could differ between
            # machines (paths, panic locations), which would split the app hash. Logged instead.
            log.info("zk proof for %s/%s rejected by ezkl: %s", msg.task_id, msg.request_id, detail)
            reason = "ezkl's verifier rejected the proof for this version's vk"
    if verdict == "invalid":
        input_hash, outputs = None, None
    rec: ProofRecord = {
        "request_id": msg.request_id, "task_id": msg.task_id, "version": msg.version,
        "input_mode": msg.input_mode, "node": msg.node, "submitter": signer,  # type: ignore[typeddict-item]
        "proof_sha256": msg.digest, "verdict": verdict, "reason": reason,  # type: ignore[typeddict-item]
        "input_hash": input_hash, "outputs": outputs, "output_scale": facts.output_scale,
        "guarantee": "zk" if verdict == "valid" else "none", "height": ctx.height}
    store_record(state, keys.proof_key(msg.task_id, msg.request_id), dict(rec))
    store_record(state, keys.digest_key(msg.digest), {"task_id": msg.task_id, "request_id": msg.request_id})
    m = meta(view)
    m["proofs"] += 1
    m["invalid"] += verdict == "invalid"
    store_record(state, keys.META_KEY, dict(m))
    return [fl_event("submit_inference_proof", signer, task=msg.task_id, version=msg.version,
                     request=msg.request_id, node=msg.node, verdict=verdict)]


HANDLERS: dict[str, Handler] = {
    "register_zk_circuit": register_circuit,
    "submit_inference_proof": submit_proof,
}
