"""The attestation keeper: read a DID's record, and the gate other modules call before trusting a node's TEE.

Other modules reach attestation state only through these functions.
"""

from __future__ import annotations

from typing import cast

from fedledger.abci_app.attest.report import TcbVersion
from fedledger.abci_app.context import BlockContext, Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.attestation import keys
from fedledger.abci_app.modules.attestation.msgs import parse_tee_requirement
from fedledger.abci_app.modules.attestation.records import AttestationRecord, TcbRecord, TeeRequirement
from fedledger.abci_app.records import load_record

__all__ = ["find_attestation", "parse_tee_requirement", "require_attested", "tcb_version"]


def find_attestation(view: Reader, did: str) -> AttestationRecord | None:
    """The DID's latest attestation record, or None."""
    return cast("AttestationRecord | None", load_record(view, keys.record_key(did)))


def tcb_version(rec: TcbRecord) -> TcbVersion:
    """A stored TCB as the verifier's comparable type."""
    return TcbVersion(bootloader=rec["bootloader"], tee=rec["tee"], snp=rec["snp"], microcode=rec["microcode"],
                      fmc=rec["fmc"])


def require_attested(view: Reader, ctx: BlockContext, did: str, key: str, need: TeeRequirement,
                     what: str) -> AttestationRecord:
    """The DID's attestation, if it is valid for `key`, unexpired at the block's time and meets `need`.

    ATTESTATION_REQUIRED: no record, one for another key, or an expired one; ATTESTATION_INVALID:
    the last evidence was refused (its reason in the log); ATTESTATION_POLICY: debug guest, a
    measurement not allowed, or a TCB below the minimum.
    """
    rec = find_attestation(view, did)
    now = ctx.time_ns // 1_000_000_000
    if rec is None:
        raise TxError(Code.ATTESTATION_REQUIRED, f"{what} requires a TEE: {did[:48]}… has no SEV-SNP attestation; "
                                                 "submit_attestation first")
    if rec["verdict"] != "valid":
        raise TxError(Code.ATTESTATION_INVALID, f"{what} requires a TEE: the last attestation of {did[:48]}… was "
                                                f"refused ({rec['reason']}: {rec['detail'][:160]})")
    if rec["key"] != key:
        raise TxError(Code.ATTESTATION_REQUIRED, f"{what} requires a TEE: the attestation binds another key of "
                                                 f"{did[:48]}…; attest the current key")
    if now >= rec["expires_at"]:
        raise TxError(Code.ATTESTATION_REQUIRED, f"{what} requires a TEE: the attestation of {did[:48]}… expired "
                                                 f"at {rec['expires_at']} (block time {now}); attest again")
    if rec["debug"]:
        raise TxError(Code.ATTESTATION_POLICY, f"{what}: the attested guest allows debugging (policy bit 19)")
    if need["measurements"] and rec["measurement"] not in need["measurements"]:
        raise TxError(Code.ATTESTATION_POLICY, f"{what}: launch measurement {rec['measurement'][:24]}… is not "
                                               "among the task's allowed measurements")
    tcb, minimum = tcb_version(cast(TcbRecord, rec["tcb"])), tcb_version(need["min_tcb"])
    if not tcb.at_least(minimum):
        raise TxError(Code.ATTESTATION_POLICY, f"{what}: reported TCB {tcb.text()} is below the task's minimum "
                                               f"{minimum.text()}")
    return rec
