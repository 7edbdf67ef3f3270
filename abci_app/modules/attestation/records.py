"""The attestation module's chain records: one per DID (its latest evidence and verdict), the params, and the
TEE requirement other modules attach to a task."""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = ["AttestationParams", "AttestationRecord", "TcbRecord", "TeeRequirement", "Verdict"]

Verdict = Literal["valid", "refused"]


class TcbRecord(TypedDict):
    """A TCB_VERSION's security patch levels."""

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int  # Turin only; 0 elsewhere


class AttestationRecord(TypedDict):
    """`att/rec/<did>`: the DID's latest SEV-SNP evidence, what it says, and whether the chain accepted it."""

    did: str
    key: str  # the signing key (hex) the report binds; the record vouches for this key only
    verdict: Verdict
    reason: str  # "" when valid; else an abci_app.attest.errors.Reason value
    detail: str  # the verifier's message (truncated); "" when valid
    family: str  # Milan | Genoa | Turin ("" when the chain did not verify)
    measurement: str  # hex, 48 bytes ("" when the report did not parse)
    tcb: TcbRecord | None  # the reported TCB (None when it did not parse)
    chip_id: str  # the first 8 bytes of the chip id, hex (a record, not a fingerprint to track hosts by)
    debug: bool
    vmpl: int
    guest_svn: int
    report_sha256: str
    height: int
    time: int  # block time, unix seconds
    expires_at: int  # unix seconds: min(chain's earliest certificate expiry, time + ttl); 0 when refused


class AttestationParams(TypedDict):
    """`att/params`: how long a verified attestation counts."""

    ttl: int  # seconds after the block that verified it


class TeeRequirement(TypedDict):
    """A task's TEE demand (stored in its inference policy): allowed launch measurements and a minimum TCB.

    Debug-enabled guests are always refused; an empty measurement list admits any measurement.
    """

    measurements: list[str]  # hex, 96 chars each, sorted
    min_tcb: TcbRecord
