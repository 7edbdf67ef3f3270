"""Test-only SEV-SNP evidence: a self-made ARK -> ASK -> VCEK chain and reports signed by it.

THIS IS A TEST ROOT. It is generated inside the tests and pinned only in the tests (as a `Roots`
passed explicitly); the chain code pins AMD's real roots. It exists because real published reports
bind other data in report_data, so the positive binding path needs a report we can sign.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from fedledger.abci_app.attest.certs import Roots

FIXTURES = Path(__file__).resolve().parent / "unit" / "fixtures" / "sevsnp"
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
START = datetime(2025, 1, 1, tzinfo=UTC)


def real_report() -> bytes:
    """The published Milan report (see fixtures/sevsnp/README.md)."""
    return bytes.fromhex("".join((FIXTURES / "report_milan.hex").read_text().split()))


def real_vcek() -> bytes:
    """The published Milan VCEK (DER)."""
    return (FIXTURES / "vcek_milan.der").read_bytes()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: str, key: object, signer: rsa.RSAPrivateKey, days: int,
          exts: list[x509.UnrecognizedExtension] | None = None) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key).serial_number(1)  # type: ignore[arg-type]
         .not_valid_before(START).not_valid_after(START + timedelta(days=days)))
    for e in exts or []:
        b = b.add_extension(e, critical=False)
    return b.sign(signer, hashes.SHA384(), rsa_padding=_PSS)


def _int_ext(n: int, value: int) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(f"1.3.6.1.4.1.3704.1.3.{n}"), bytes([2, 1, value]))


@dataclass
class SnpTestChain:
    """A test ARK/ASK/VCEK (family 'Milan' in the test Roots) and the VCEK's P-384 key."""

    roots: Roots
    ark: x509.Certificate
    ask: x509.Certificate
    vcek: x509.Certificate
    vcek_key: ec.EllipticCurvePrivateKey
    chip_id: bytes

    @property
    def vcek_der(self) -> bytes:
        """The VCEK, DER."""
        return self.vcek.public_bytes(Encoding.DER)

    def report(self, *, report_data: bytes = b"\x00" * 64, measurement: bytes = b"\x11" * 48,
               policy: int = 0x30000, tcb: bytes = bytes([3, 0, 0, 0, 0, 0, 8, 115]),
               chip_id: bytes | None = None, version: int = 2) -> bytes:
        """A v2 report with these fields, signed by the test VCEK key."""
        body = bytearray(0x2A0)
        struct.pack_into("<IIQ", body, 0, version, 0, policy)
        struct.pack_into("<II", body, 0x30, 0, 1)
        body[0x38:0x40] = tcb
        body[0x50:0x90] = report_data
        body[0x90:0xC0] = measurement
        body[0x180:0x188] = tcb
        body[0x1A0:0x1E0] = chip_id if chip_id is not None else self.chip_id
        body[0x1E0:0x1E8] = tcb
        der = self.vcek_key.sign(bytes(body), ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(der)
        sig = r.to_bytes(72, "little") + s.to_bytes(72, "little") + bytes(0x200 - 144)
        return bytes(body) + sig


def make_test_chain(chip_id: bytes = b"\xc1" * 64, tcb: tuple[int, int, int, int] = (3, 0, 8, 115),
                    vcek_days: int = 365) -> SnpTestChain:
    """Generate a fresh TEST root chain (RSA-2048 to keep tests fast; AMD's are RSA-4096)."""
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    vcek_key = ec.generate_private_key(ec.SECP384R1())
    ark = _cert("TEST-ARK-Milan", "TEST-ARK-Milan", ark_key.public_key(), ark_key, 3650)
    ask = _cert("TEST-SEV-Milan", "TEST-ARK-Milan", ask_key.public_key(), ark_key, 3650)
    exts = [_int_ext(1, tcb[0]), _int_ext(2, tcb[1]), _int_ext(3, tcb[2]), _int_ext(8, tcb[3]),
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.4"), chip_id)]
    vcek = _cert("TEST-SEV-VCEK", "TEST-SEV-Milan", vcek_key.public_key(), ask_key, vcek_days, exts)
    return SnpTestChain(roots=Roots(ark={"Milan": ark}, ask={"Milan": ask}), ark=ark, ask=ask, vcek=vcek,
                     vcek_key=vcek_key, chip_id=chip_id)
