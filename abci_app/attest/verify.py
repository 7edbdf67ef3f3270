"""Verify SEV-SNP evidence end to end: chain, report signature, VCEK match, key binding, then a policy.

The binding rule (how a report names the FedLedger member that runs inside the VM): the guest
puts `binding_digest(did, key)` = SHA-256(b"fedledger/sevsnp/did-key/v1\\x00" || did (UTF-8) ||
b"\\x00" || the DID's current Ed25519 public key, raw 32 bytes) into report_data[0:32] when it asks
the firmware for the report. report_data[32:64] is left to the guest (a nonce, say) and not
checked. A report that does not carry that digest is refused with Reason.BINDING, so evidence from
one VM cannot be claimed by another member.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fedledger.abci_app.attest.certs import Roots, VcekInfo, pinned_roots, verify_chain
from fedledger.abci_app.attest.errors import AttestationError, Reason
from fedledger.abci_app.attest.report import AttestationReport, TcbVersion, parse_report

__all__ = ["BINDING_TAG", "AttestationPolicy", "VerifiedEvidence", "binding_digest", "check_binding",
           "check_policy", "verify_evidence"]

BINDING_TAG = b"fedledger/sevsnp/did-key/v1\x00"
_SIGNING_KEY_VCEK = 0

_ROOTS: Roots | None = None


def _default_roots() -> Roots:
    # Parsing the pinned PEMs is pure; cache the result so each tx does not reparse six certificates.
    global _ROOTS  # noqa: PLW0603
    if _ROOTS is None:
        _ROOTS = pinned_roots()
    return _ROOTS


@dataclass(frozen=True)
class AttestationPolicy:
    """What a task demands of a node's VM. An empty allow-list admits any measurement."""

    allowed_measurements: tuple[bytes, ...] = ()
    min_tcb: TcbVersion = field(default_factory=lambda: TcbVersion(0, 0, 0, 0))
    allow_debug: bool = False
    max_vmpl: int = 3
    min_guest_svn: int = 0


@dataclass(frozen=True)
class VerifiedEvidence:
    """A report whose signature and chain verified, with what the VCEK says about the chip."""

    report: AttestationReport
    vcek: VcekInfo

    @property
    def tcb(self) -> TcbVersion:
        """The reported TCB, read with the family's layout."""
        return self.report.reported_tcb(self.vcek.family)


def verify_evidence(report_raw: bytes, vcek_der: bytes, at: int, *, ask_der: bytes | None = None,
                    ark_der: bytes | None = None, roots: Roots | None = None) -> VerifiedEvidence:
    """Parse the report, verify the chain at unix time `at`, the ECDSA P-384 signature, and that the VCEK is this
    chip's at this TCB. Raises AttestationError with the first failing reason. Checks no policy and no binding."""
    report = parse_report(report_raw)
    if report.signing_key != _SIGNING_KEY_VCEK:
        raise AttestationError(Reason.MALFORMED, f"the report is signed by key kind {report.signing_key}; only "
                                                 "VCEK-signed reports (0) are accepted")
    info = verify_chain(vcek_der, at, roots if roots is not None else _default_roots(), ask_der, ark_der)
    signature = encode_dss_signature(report.signature_r, report.signature_s)
    try:
        info.public_key.verify(signature, report.signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as exc:
        raise AttestationError(Reason.FORGED, "the report's signature does not verify under the VCEK") from exc
    reported = report.reported_tcb(info.family)
    if reported != info.tcb:
        raise AttestationError(Reason.VCEK_MISMATCH, f"the VCEK is for TCB {info.tcb.text()}, the report's "
                                                     f"reported TCB is {reported.text()}")
    if report.mask_chip_key or report.chip_id[:len(info.hwid)] != info.hwid:
        raise AttestationError(Reason.VCEK_MISMATCH, f"the VCEK is for chip {info.hwid.hex()[:16]}…, the report "
                                                     f"names chip {report.chip_id.hex()[:16]}…")
    return VerifiedEvidence(report=report, vcek=info)


def check_policy(evidence: VerifiedEvidence, policy: AttestationPolicy) -> None:
    """Raise AttestationError (DEBUG, TCB_TOO_LOW, MEASUREMENT, POLICY) unless the verified report meets policy."""
    report = evidence.report
    if report.policy.debug and not policy.allow_debug:
        raise AttestationError(Reason.DEBUG, f"guest policy {report.policy.raw:#x} allows debugging (bit 19)")
    if not evidence.tcb.at_least(policy.min_tcb):
        raise AttestationError(Reason.TCB_TOO_LOW, f"reported TCB {evidence.tcb.text()} is below the minimum "
                                                   f"{policy.min_tcb.text()}")
    if policy.allowed_measurements and report.measurement not in policy.allowed_measurements:
        raise AttestationError(Reason.MEASUREMENT, f"launch measurement {report.measurement.hex()[:24]}… is "
                                                   "not in the allowed list")
    if report.vmpl > policy.max_vmpl:
        raise AttestationError(Reason.POLICY, f"report requested at VMPL {report.vmpl}, above {policy.max_vmpl}")
    if report.guest_svn < policy.min_guest_svn:
        raise AttestationError(Reason.POLICY, f"guest SVN {report.guest_svn} is below {policy.min_guest_svn}")


def binding_digest(did: str, public_key: bytes) -> bytes:
    """The 32 bytes a report's report_data must start with to bind this DID and key (see the module docstring)."""
    return hashlib.sha256(BINDING_TAG + did.encode("utf-8") + b"\x00" + public_key).digest()


def check_binding(report: AttestationReport, did: str, public_key: bytes) -> None:
    """Raise AttestationError(BINDING) unless report_data[0:32] binds did and its key."""
    if report.report_data[:32] != binding_digest(did, public_key):
        raise AttestationError(Reason.BINDING, f"report_data does not bind DID {did[:48]} and its key: expected "
                                               f"sha256(tag, did, key) in report_data[0:32]")
