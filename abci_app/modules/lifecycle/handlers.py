"""Lifecycle tx handler: an evaluator's attestation, which decides the version when it completes the quorum."""

from __future__ import annotations

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.federation.keeper import find_version, task_exists
from fedledger.abci_app.modules.identity.keeper import require_member
from fedledger.abci_app.modules.lifecycle import keys
from fedledger.abci_app.modules.lifecycle.decisions import apply_decision, attestations, decide, promotion_policy
from fedledger.abci_app.modules.lifecycle.msgs import AttestVersion
from fedledger.abci_app.modules.lifecycle.params import task_params
from fedledger.abci_app.modules.lifecycle.records import AttestationRecord
from fedledger.abci_app.modules.lifecycle.weight import evaluator_weight
from fedledger.abci_app.records import store_record

__all__ = ["HANDLERS", "attest_version"]


def attest_version(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                   msg: AttestVersion) -> list[Event]:
    """Record an evaluator's attestation of a proposed version; at quorum, promote or quarantine it."""
    member = require_member(view, signer, ctx, ("evaluator",), "attest model versions")
    if member["tasks"] and msg.task_id not in member["tasks"]:
        raise TxError(Code.UNAUTHORIZED, f"this evaluator's credential covers tasks {member['tasks']}, not "
                                         f"{msg.task_id!r}")
    if not task_exists(view, msg.task_id):
        raise TxError(Code.NOT_FOUND, f"task {msg.task_id!r} does not exist")
    version_rec = find_version(view, msg.task_id, msg.version)
    if version_rec is None:
        raise TxError(Code.NOT_FOUND, f"version {msg.version} of task {msg.task_id!r} does not exist")
    if version_rec["status"] != "proposed":
        raise TxError(Code.VERSION_DECIDED, f"version {msg.version} of {msg.task_id!r} is {version_rec['status']}; "
                                            "only a proposed version can be attested")
    did = member["did"]
    akey = keys.attestation_key(msg.task_id, msg.version, did)
    if view.get(akey) is not None:
        raise TxError(Code.ALREADY_EXISTS, f"{did} already attested version {msg.version} of {msg.task_id!r}")
    weight = evaluator_weight(view, did, ctx.height)
    record: AttestationRecord = {
        "task_id": msg.task_id, "version": msg.version, "evaluator": did, "signer": signer,
        "organization": member["organization"], "canary_accuracy_ppm": msg.canary_accuracy_ppm,
        "backdoor_asr_ppm": msg.backdoor_asr_ppm, "metrics_sha256": msg.metrics_sha256, "weight": weight,
        "height": ctx.height,
    }
    atts = sorted([*attestations(view, msg.task_id, msg.version), record], key=lambda a: str(a["evaluator"]))
    decision = decide(view, msg.task_id, version_rec, atts, task_params(view, msg.task_id))
    events = [fl_event("attest_version", signer, task=msg.task_id, version=msg.version, evaluator=did,
                       weight=weight, canary_accuracy_ppm=msg.canary_accuracy_ppm,
                       backdoor_asr_ppm=msg.backdoor_asr_ppm)]
    if state is not None:
        if decision is not None:
            decision, policy = promotion_policy(state, ctx, msg.task_id, version_rec, decision)
            events += apply_decision(state, msg.task_id, version_rec, decision, ctx.height, signer)
            if policy is not None:
                events += policy.record(state)
        store_record(state, akey, record)
    return events


HANDLERS: dict[str, Handler] = {"attest_version": attest_version}
