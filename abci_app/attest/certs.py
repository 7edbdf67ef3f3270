"""The AMD certificate chain ARK -> ASK -> VCEK: signatures (RSA-PSS SHA-384), names, validity, VCEK extensions.

A VCEK (Versioned Chip Endorsement Key) certificate is issued by AMD's key distribution service
per chip and per reported TCB; it carries them in AMD extensions (1.3.6.1.4.1.3704.1.x):
.1.3.1 bootloader SPL, .1.3.2 TEE SPL, .1.3.3 SNP SPL, .1.3.8 microcode SPL, .1.3.9 FMC SPL (Turin),
.1.4 hwID (the chip id: 64 bytes on Milan and Genoa, 8 on Turin), each SPL a DER INTEGER.
Time is given by the caller as unix seconds (the block time), never read from a clock.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from fedledger.abci_app.attest.errors import AttestationError, Reason
from fedledger.abci_app.attest.report import TcbVersion
from fedledger.abci_app.attest.roots import FAMILIES, PINNED_ARK_PEM, PINNED_ASK_PEM

__all__ = ["AMD_OID", "Roots", "VcekInfo", "load_cert", "pinned_roots", "verify_chain"]

AMD_OID = "1.3.6.1.4.1.3704.1"
_OID_BL, _OID_TEE, _OID_SNP, _OID_UCODE, _OID_FMC = (f"{AMD_OID}.3.{n}" for n in (1, 2, 3, 8, 9))
_OID_HWID = f"{AMD_OID}.4"
_RSASSA_PSS = "1.2.840.113549.1.1.10"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Roots:
    """The trusted ARK and ASK certificate per product family (family -> cert), in FAMILIES order."""

    ark: dict[str, x509.Certificate]
    ask: dict[str, x509.Certificate]


@dataclass(frozen=True)
class VcekInfo:
    """What a verified VCEK certificate vouches for."""

    family: str
    public_key: ec.EllipticCurvePublicKey
    tcb: TcbVersion
    hwid: bytes
    not_before: int  # unix seconds
    not_after: int  # the earliest expiry along the chain, unix seconds


def load_cert(data: bytes, what: str) -> x509.Certificate:
    """A DER or PEM certificate; AttestationError(MALFORMED) if it does not parse."""
    try:
        # AMD's certificates carry a zero serial number, which cryptography warns about but still parses.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if data.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_certificate(data)
            return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise AttestationError(Reason.MALFORMED, f"{what} certificate does not parse: {exc}") from exc


def pinned_roots() -> Roots:
    """AMD's published ARK and ASK per family, from roots.py."""
    return Roots(ark={f: load_cert(PINNED_ARK_PEM[f].encode(), f"pinned {f} ARK") for f in FAMILIES},
                 ask={f: load_cert(PINNED_ASK_PEM[f].encode(), f"pinned {f} ASK") for f in FAMILIES})


def _seconds(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(seconds=1)


def _check_signed_by(child: x509.Certificate, issuer: x509.Certificate, what: str) -> None:
    """child's signature is RSA-PSS/SHA-384 (salt 48) by issuer's RSA key, and its issuer name is issuer's subject."""
    if child.issuer != issuer.subject:
        raise AttestationError(Reason.WRONG_ROOT, f"{what} is issued by {child.issuer.rfc4514_string()!r}, not "
                                                  f"{issuer.subject.rfc4514_string()!r}")
    if child.signature_algorithm_oid.dotted_string != _RSASSA_PSS:
        raise AttestationError(Reason.MALFORMED, f"{what} is not signed with RSASSA-PSS")
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AttestationError(Reason.MALFORMED, f"the issuer of {what} has no RSA key")
    try:
        key.verify(child.signature, child.tbs_certificate_bytes,
                   padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384())
    except InvalidSignature as exc:
        # Not signed by the pinned (or pinned-rooted) issuer: whatever made it, it does not chain to AMD.
        raise AttestationError(Reason.WRONG_ROOT, f"{what}'s signature does not verify under "
                                                  f"{issuer.subject.rfc4514_string()!r}") from exc


def _check_time(cert: x509.Certificate, at: int, what: str) -> None:
    start, end = _seconds(cert.not_valid_before_utc), _seconds(cert.not_valid_after_utc)
    if not start <= at <= end:
        raise AttestationError(Reason.EXPIRED, f"{what} is valid {cert.not_valid_before_utc.isoformat()} .. "
                                               f"{cert.not_valid_after_utc.isoformat()}, not at unix time {at}")


def _der_uint(raw: bytes, what: str) -> int:
    """A small DER INTEGER (tag 02, short length), non-negative."""
    if len(raw) < 3 or raw[0] != 0x02 or raw[1] != len(raw) - 2 or raw[1] > 2 or raw[2] & 0x80:
        raise AttestationError(Reason.MALFORMED, f"VCEK extension {what} is not a small DER INTEGER")
    return int.from_bytes(raw[2:], "big")


def _ext(cert: x509.Certificate, oid: str) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    except x509.ExtensionNotFound:
        return None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _vcek_tcb_and_hwid(vcek: x509.Certificate, family: str) -> tuple[TcbVersion, bytes]:
    parts: dict[str, int] = {}
    for name, oid in (("bl", _OID_BL), ("tee", _OID_TEE), ("snp", _OID_SNP), ("ucode", _OID_UCODE),
                      ("fmc", _OID_FMC)):
        raw = _ext(vcek, oid)
        if raw is None:
            if name == "fmc" and family != "Turin":
                parts[name] = 0
                continue
            raise AttestationError(Reason.MALFORMED, f"the VCEK lacks AMD extension {oid} ({name} SPL)")
        parts[name] = _der_uint(raw, oid)
    hwid = _ext(vcek, _OID_HWID)
    if hwid is None:
        raise AttestationError(Reason.MALFORMED, f"the VCEK lacks AMD extension {_OID_HWID} (hwID)")
    if len(hwid) == 66 and hwid[:2] == b"\x04\x40":  # some issuers wrap the 64 bytes in an OCTET STRING
        hwid = hwid[2:]
    tcb = TcbVersion(bootloader=parts["bl"], tee=parts["tee"], snp=parts["snp"], microcode=parts["ucode"],
                     fmc=parts["fmc"])
    return tcb, hwid


def verify_chain(vcek_der: bytes, at: int, roots: Roots, ask_der: bytes | None = None,
                 ark_der: bytes | None = None) -> VcekInfo:
    """Check ARK (pinned, self-signed) -> ASK -> VCEK at unix time `at`; returns what the VCEK vouches for.

    The family is the one whose pinned ASK subject names the VCEK's issuer. A sent ARK must be
    byte-identical to the pinned one (else WRONG_ROOT); a sent ASK must verify under the pinned ARK.
    """
    vcek = load_cert(vcek_der, "VCEK")
    family = next((f for f in FAMILIES if f in roots.ask and roots.ask[f].subject == vcek.issuer), None)
    if family is None:
        raise AttestationError(Reason.WRONG_ROOT, f"the VCEK's issuer {vcek.issuer.rfc4514_string()!r} is no "
                                                  f"pinned AMD ASK (families {list(roots.ask)})")
    ark = roots.ark[family]
    if ark_der is not None and load_cert(ark_der, "ARK").public_bytes(Encoding.DER) != ark.public_bytes(Encoding.DER):
        raise AttestationError(Reason.WRONG_ROOT, f"the sent ARK is not AMD's pinned {family} ARK")
    ask = roots.ask[family] if ask_der is None else load_cert(ask_der, "ASK")
    _check_signed_by(ark, ark, f"the {family} ARK")
    _check_signed_by(ask, ark, f"the {family} ASK")
    _check_signed_by(vcek, ask, "the VCEK")
    for cert, what in ((ark, "the ARK"), (ask, "the ASK"), (vcek, "the VCEK")):
        _check_time(cert, at, what)
    key = vcek.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise AttestationError(Reason.MALFORMED, "the VCEK's key is not an ECDSA P-384 key")
    tcb, hwid = _vcek_tcb_and_hwid(vcek, family)
    not_after = min(_seconds(c.not_valid_after_utc) for c in (ark, ask, vcek))
    return VcekInfo(family=family, public_key=key, tcb=tcb, hwid=hwid,
                    not_before=_seconds(vcek.not_valid_before_utc), not_after=not_after)

