"""The one error an attestation check raises, with a fixed reason so the chain can record why it refused."""

from __future__ import annotations

from enum import StrEnum

from fedledger.abci_app.errors import VerificationError

__all__ = ["AttestationError", "Reason"]


class Reason(StrEnum):
    """Why evidence was refused; the chain stores the value in the attestation record."""

    MALFORMED = "malformed"  # report or certificate does not parse, or has a field outside the ABI
    FORGED = "forged_signature"  # the report signature does not verify under the VCEK
    WRONG_ROOT = "wrong_root"  # the chain does not end in a pinned AMD ARK (a cert signature or name fails)
    EXPIRED = "expired"  # a certificate is outside its validity window at the given time
    VCEK_MISMATCH = "vcek_mismatch"  # the VCEK is for another chip or another TCB than the report says
    DEBUG = "debug_policy"  # the guest policy allows debugging: its memory is readable by the host
    TCB_TOO_LOW = "tcb_too_low"  # the reported TCB is below the policy's minimum
    MEASUREMENT = "measurement_not_allowed"  # the launch measurement is not in the policy's allow-list
    POLICY = "policy"  # another policy rule (VMPL, guest SVN) refuses the report
    BINDING = "binding"  # report_data does not bind the member's DID key


class AttestationError(VerificationError):
    """SEV-SNP evidence was refused; `reason` says which check failed, the message says how."""

    error_code = "ATTESTATION"

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
