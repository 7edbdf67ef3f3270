"""The attestation module's handler: verify submitted SEV-SNP evidence at block time and record the verdict.

Evidence that fails verification is still recorded (verdict "refused" with its reason), so the
tx succeeds and anyone can see why a node's TEE is not trusted; only a malformed body (bad
base64, wrong size) or a signer that is not the DID fails the tx. Every check runs against `view`
before anything is written, so CheckTx and FinalizeBlock agree.
"""

from __future__ import annotations

import hashlib

from fedledger.abci_app.attest.certs import Roots
from fedledger.abci_app.attest.errors import AttestationError
from fedledger.abci_app.attest.report import parse_report
from fedledger.abci_app.attest.verify import check_binding, verify_evidence
from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.attestation import keys
from fedledger.abci_app.modules.attestation.msgs import SubmitAttestation
from fedledger.abci_app.modules.attestation.params import params
from fedledger.abci_app.modules.attestation.records import AttestationRecord, TcbRecord
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.identity.keeper import require_member
from fedledger.abci_app.records import store_record

__all__ = ["HANDLERS", "ROOTS"]

ROOTS: Roots | None = None
"""The trust anchors; None means AMD's pinned roots (abci_app/attest/roots.py). Only unit tests replace it."""


def _tcb(report_raw: bytes, family: str) -> TcbRecord | None:
    try:
        t = parse_report(report_raw).reported_tcb(family or "Milan")
    except AttestationError:
        return None
    return {"bootloader": t.bootloader, "tee": t.tee, "snp": t.snp, "microcode": t.microcode, "fmc": t.fmc}


def judge(msg: SubmitAttestation, signer: str, ctx: BlockContext, ttl: int) -> AttestationRecord:
    """Verify the evidence at the block's time and bind it to (did, signer); the record of the verdict."""
    now = ctx.time_ns // 1_000_000_000
    verdict, reason, detail, family, expires = "valid", "", "", "", 0
    try:
        ev = verify_evidence(msg.report, msg.vcek_cert, now, ask_der=msg.ask_cert, ark_der=msg.ark_cert,
                             roots=ROOTS)
        family = ev.vcek.family
        check_binding(ev.report, msg.did, bytes.fromhex(signer))
        expires = min(ev.vcek.not_after, now + ttl)
    except AttestationError as exc:
        verdict, reason, detail, expires = "refused", exc.reason.value, exc.detail[:240], 0
    try:
        report = parse_report(msg.report)
        fields = (report.measurement.hex(), report.chip_id[:8].hex(), report.policy.debug, report.vmpl,
                  report.guest_svn)
    except AttestationError:
        fields = ("", "", False, 0, 0)
    return {"did": msg.did, "key": signer, "verdict": "valid" if verdict == "valid" else "refused",
            "reason": reason, "detail": detail, "family": family, "measurement": fields[0],
            "tcb": _tcb(msg.report, family), "chip_id": fields[1], "debug": fields[2], "vmpl": fields[3],
            "guest_svn": fields[4], "report_sha256": hashlib.sha256(msg.report).hexdigest(), "height": ctx.height,
            "time": now, "expires_at": expires}


def submit_attestation(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                       msg: SubmitAttestation) -> list[Event]:
    """A member records its own VM's evidence; the chain verifies it (chain, signature, binding) at block time."""
    member = require_member(view, signer, ctx, None, "submit attestation evidence")
    if member["did"] != msg.did:
        raise TxError(Code.UNAUTHORIZED, "a member submits attestation evidence for its own DID only")
    rec = judge(msg, signer, ctx, params(view)["ttl"])
    if state is not None:
        store_record(state, keys.record_key(msg.did), dict(rec))
    return [fl_event("submit_attestation", signer, did=msg.did, verdict=rec["verdict"],
                     reason=rec["reason"] or "-", measurement=rec["measurement"] or "-",
                     expires_at=rec["expires_at"])]


HANDLERS: dict[str, Handler] = {"submit_attestation": submit_attestation}
