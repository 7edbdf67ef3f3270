"""The SEV-SNP ATTESTATION_REPORT structure (AMD SEV-SNP ABI spec rev. 1.55+, table "ATTESTATION_REPORT").

Layout (offsets in hex, little-endian integers): 00 version u32, 04 guest_svn u32, 08 policy u64,
10 family_id 16 B, 20 image_id 16 B, 30 vmpl u32, 34 signature_algo u32, 38 current_tcb 8 B,
40 platform_info u64, 48 flags u32 (bit 0 author_key_en, bit 1 mask_chip_key, bits 2-4 signing_key),
4C reserved, 50 report_data 64 B, 90 measurement 48 B, C0 host_data 32 B, E0 id_key_digest 48 B,
110 author_key_digest 48 B, 140 report_id 32 B, 160 report_id_ma 32 B, 180 reported_tcb 8 B,
188 reserved (v3: cpuid fam/model/stepping), 1A0 chip_id 64 B, 1E0 committed_tcb 8 B,
1E8 current build/minor/major, 1EC committed build/minor/major, 1F0 launch_tcb 8 B, 1F8 reserved,
2A0 signature (r 72 B, s 72 B, little-endian, then reserved) to 4A0 = 1184 bytes. The signature
covers bytes [0, 2A0).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from fedledger.abci_app.attest.errors import AttestationError, Reason

__all__ = ["REPORT_SIZE", "SIGNED_SIZE", "AttestationReport", "GuestPolicy", "TcbVersion", "parse_report"]

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
SUPPORTED_VERSIONS = (2, 3)  # v2 (firmware 1.51+) and v3 (1.55, adds cpuid fields in a reserved area)
SIG_ALGO_ECDSA_P384_SHA384 = 1
_SIG_COMPONENT = 72  # r and s are each 72 bytes little-endian, zero-extended past the 48 of P-384


@dataclass(frozen=True, order=True)
class TcbVersion:
    """A TCB_VERSION: the security patch levels of each firmware component (compared field by field)."""

    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int = 0  # Turin only

    @staticmethod
    def parse(raw: bytes, family: str = "Milan") -> TcbVersion:
        """Decode 8 bytes; Milan and Genoa put bl, tee at bytes 0, 1 and snp, ucode at 6, 7; Turin shifts them."""
        if len(raw) != 8:
            raise AttestationError(Reason.MALFORMED, f"a TCB_VERSION is 8 bytes, got {len(raw)}")
        if family == "Turin":
            return TcbVersion(bootloader=raw[1], tee=raw[2], snp=raw[3], microcode=raw[7], fmc=raw[0])
        return TcbVersion(bootloader=raw[0], tee=raw[1], snp=raw[6], microcode=raw[7])

    def at_least(self, minimum: TcbVersion) -> bool:
        """Whether every component is at or above the minimum's (a partial order, not a lexicographic one)."""
        return (self.bootloader >= minimum.bootloader and self.tee >= minimum.tee and self.snp >= minimum.snp
                and self.microcode >= minimum.microcode and self.fmc >= minimum.fmc)

    def text(self) -> str:
        """A stable text form for records and logs."""
        fmc = f"fmc={self.fmc}," if self.fmc else ""
        return f"{fmc}bl={self.bootloader},tee={self.tee},snp={self.snp},ucode={self.microcode}"


@dataclass(frozen=True)
class GuestPolicy:
    """The guest policy the VM was launched with (bit positions from the ABI spec's GUEST_POLICY)."""

    raw: int
    abi_minor: int
    abi_major: int
    smt: bool  # bit 16
    migrate_ma: bool  # bit 18
    debug: bool  # bit 19: the hypervisor may read and write guest memory through the debug commands
    single_socket: bool  # bit 20

    @staticmethod
    def parse(raw: int) -> GuestPolicy:
        """Decode the 64-bit policy; bit 17 is reserved and must be 1."""
        if not raw >> 17 & 1:
            raise AttestationError(Reason.MALFORMED, f"guest policy {raw:#x} has reserved bit 17 clear")
        return GuestPolicy(raw=raw, abi_minor=raw & 0xFF, abi_major=raw >> 8 & 0xFF, smt=bool(raw >> 16 & 1),
                           migrate_ma=bool(raw >> 18 & 1), debug=bool(raw >> 19 & 1),
                           single_socket=bool(raw >> 20 & 1))


@dataclass(frozen=True)
class AttestationReport:
    """A parsed attestation report; `raw` keeps the exact bytes, `signed` the part the signature covers."""

    raw: bytes
    version: int
    guest_svn: int
    policy: GuestPolicy
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb_raw: bytes
    platform_info: int
    author_key_en: bool
    mask_chip_key: bool
    signing_key: int  # 0: VCEK, 1: VLEK, 7: none
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb_raw: bytes
    chip_id: bytes
    committed_tcb_raw: bytes
    current_build: tuple[int, int, int]  # (major, minor, build)
    committed_build: tuple[int, int, int]
    launch_tcb_raw: bytes
    signature_r: int
    signature_s: int

    @property
    def signed(self) -> bytes:
        """The bytes the signature covers."""
        return self.raw[:SIGNED_SIZE]

    def reported_tcb(self, family: str) -> TcbVersion:
        """The TCB the VCEK was derived from (the one a VCEK certificate must match)."""
        return TcbVersion.parse(self.reported_tcb_raw, family)

    def current_tcb(self, family: str) -> TcbVersion:
        """The TCB the platform runs now (may be above the reported one)."""
        return TcbVersion.parse(self.current_tcb_raw, family)


def _le(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


def parse_report(raw: bytes) -> AttestationReport:
    """Parse and sanity-check a report; AttestationError(MALFORMED) names the field that is wrong."""
    if not isinstance(raw, bytes) or len(raw) != REPORT_SIZE:
        size = len(raw) if isinstance(raw, bytes) else type(raw).__name__
        raise AttestationError(Reason.MALFORMED, f"an SEV-SNP report is {REPORT_SIZE} bytes, got {size}")
    version, guest_svn, policy = struct.unpack_from("<IIQ", raw, 0x00)
    if version not in SUPPORTED_VERSIONS:
        raise AttestationError(Reason.MALFORMED, f"report version {version} is not one of {SUPPORTED_VERSIONS}")
    vmpl, sig_algo = struct.unpack_from("<II", raw, 0x30)
    if vmpl > 3:
        raise AttestationError(Reason.MALFORMED, f"vmpl {vmpl} is outside 0-3")
    if sig_algo != SIG_ALGO_ECDSA_P384_SHA384:
        raise AttestationError(Reason.MALFORMED, f"signature_algo {sig_algo} is not 1 (ECDSA P-384 with SHA-384)")
    (platform_info,) = struct.unpack_from("<Q", raw, 0x40)
    (flags,) = struct.unpack_from("<I", raw, 0x48)
    sig = raw[SIGNED_SIZE:]
    r, s = _le(sig[:_SIG_COMPONENT]), _le(sig[_SIG_COMPONENT:2 * _SIG_COMPONENT])
    if r == 0 or s == 0:
        raise AttestationError(Reason.MALFORMED, "the report carries no signature (r or s is zero)")
    return AttestationReport(
        raw=raw, version=version, guest_svn=guest_svn, policy=GuestPolicy.parse(policy),
        family_id=raw[0x10:0x20], image_id=raw[0x20:0x30], vmpl=vmpl, signature_algo=sig_algo,
        current_tcb_raw=raw[0x38:0x40], platform_info=platform_info, author_key_en=bool(flags & 1),
        mask_chip_key=bool(flags >> 1 & 1), signing_key=flags >> 2 & 7, report_data=raw[0x50:0x90],
        measurement=raw[0x90:0xC0], host_data=raw[0xC0:0xE0], id_key_digest=raw[0xE0:0x110],
        author_key_digest=raw[0x110:0x140], report_id=raw[0x140:0x160], report_id_ma=raw[0x160:0x180],
        reported_tcb_raw=raw[0x180:0x188], chip_id=raw[0x1A0:0x1E0], committed_tcb_raw=raw[0x1E0:0x1E8],
        current_build=(raw[0x1EA], raw[0x1E9], raw[0x1E8]), committed_build=(raw[0x1EE], raw[0x1ED], raw[0x1EC]),
        launch_tcb_raw=raw[0x1F0:0x1F8], signature_r=r, signature_s=s)
