"""The SEV-SNP verifier on a real published Milan report and VCEK, and on a test-only chain for what needs signing.

Real evidence: tests/unit/fixtures/sevsnp/ (github.com/virtee/sev at 9cf2adbffa209cc5becf7ff89ffdf624e7278ced,
see the README there). The test chain in tests/sevsnp_support.py is a TEST ROOT, pinned only here.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from fedledger.abci_app.attest.certs import load_cert, pinned_roots
from fedledger.abci_app.attest.errors import AttestationError, Reason
from fedledger.abci_app.attest.report import REPORT_SIZE, TcbVersion, parse_report
from fedledger.abci_app.attest.verify import (
    AttestationPolicy,
    binding_digest,
    check_binding,
    check_policy,
    verify_evidence,
)
from tests.sevsnp_support import FIXTURES, SnpTestChain, make_test_chain, real_report, real_vcek

# The published report's fields, read by hand from the hex against the ABI spec's table.
REAL_MEASUREMENT = bytes.fromhex("7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b5"
                                 "79ea158d3e1a0dc39b2c60bd95b9c480cd81841f")
REAL_CHIP_PREFIX = bytes.fromhex("d49554ec717f4e5b0fe6b143bcf0405b")
REAL_TCB = TcbVersion(bootloader=3, tee=0, snp=8, microcode=115)


def _unix(y: int, m: int, d: int) -> int:
    return int(datetime(y, m, d, tzinfo=UTC).timestamp())


INSIDE = _unix(2025, 6, 1)  # inside VCEK 2023-04-03 .. 2030-04-03 and the ARK/ASK windows
AFTER_VCEK = _unix(2030, 4, 4)
BEFORE_VCEK = _unix(2023, 4, 2)


@pytest.fixture(scope="module")
def chain() -> SnpTestChain:
    return make_test_chain()


def _reason(exc: pytest.ExceptionInfo[AttestationError]) -> Reason:
    return exc.value.reason


def test_real_report_fields_parse_per_abi() -> None:
    r = parse_report(real_report())
    assert len(r.raw) == REPORT_SIZE and r.version == 2 and r.vmpl == 0 and r.signature_algo == 1
    assert r.policy.raw == 0x30000 and r.policy.smt and not r.policy.debug and not r.policy.migrate_ma
    assert r.measurement == REAL_MEASUREMENT and r.chip_id.startswith(REAL_CHIP_PREFIX)
    assert r.reported_tcb("Milan") == REAL_TCB == r.current_tcb("Milan")
    assert r.current_build == (1, 52, 4) and r.signing_key == 0 and not r.mask_chip_key


def test_real_report_verifies_signature_chain_and_vcek_match() -> None:
    ev = verify_evidence(real_report(), real_vcek(), INSIDE)
    assert ev.vcek.family == "Milan" and ev.tcb == REAL_TCB and ev.vcek.tcb == REAL_TCB
    assert ev.vcek.hwid == ev.report.chip_id
    assert ev.vcek.not_after == _unix(2030, 4, 3) + 19 * 3600 + 23 * 60 + 43  # the VCEK expires first
    check_policy(ev, AttestationPolicy(allowed_measurements=(REAL_MEASUREMENT,), min_tcb=REAL_TCB))


def test_real_chain_sent_in_full_matches_pinned() -> None:
    pem = (FIXTURES / "cert_chain_milan").read_bytes()
    ask_pem, ark_pem = pem.split(b"-----END CERTIFICATE-----")[:2]
    certs = [load_cert(p.strip() + b"\n-----END CERTIFICATE-----\n", "x") for p in (ask_pem, ark_pem)]
    by_cn = {c.subject.rfc4514_string().split(",")[0]: c for c in certs}
    from cryptography.hazmat.primitives.serialization import Encoding
    ask, ark = by_cn["CN=SEV-Milan"].public_bytes(Encoding.DER), by_cn["CN=ARK-Milan"].public_bytes(Encoding.DER)
    assert ark == pinned_roots().ark["Milan"].public_bytes(Encoding.DER)
    verify_evidence(real_report(), real_vcek(), INSIDE, ask_der=ask, ark_der=ark)


@pytest.mark.parametrize("at", [AFTER_VCEK, BEFORE_VCEK])
def test_real_report_outside_vcek_validity_is_expired(at: int) -> None:
    with pytest.raises(AttestationError) as exc:
        verify_evidence(real_report(), real_vcek(), at)
    assert _reason(exc) is Reason.EXPIRED and "VCEK" in str(exc.value)


@pytest.mark.parametrize("offset", [0x2A0, 0x2A0 + 72, 0x90, 0x50])  # r, s, measurement, report_data
def test_flipped_byte_is_forged(offset: int) -> None:
    raw = bytearray(real_report())
    raw[offset] ^= 0x01
    with pytest.raises(AttestationError) as exc:
        verify_evidence(bytes(raw), real_vcek(), INSIDE)
    assert _reason(exc) is Reason.FORGED


def test_setting_debug_on_the_real_report_breaks_its_signature() -> None:
    raw = bytearray(real_report())
    struct.pack_into("<Q", raw, 8, 0x30000 | 1 << 19)
    with pytest.raises(AttestationError) as exc:
        verify_evidence(bytes(raw), real_vcek(), INSIDE)
    assert _reason(exc) is Reason.FORGED


def test_vcek_of_another_chip_is_refused() -> None:
    turin = (FIXTURES / "vcek_turin.der").read_bytes()
    with pytest.raises(AttestationError) as exc:
        verify_evidence(real_report(), turin, INSIDE)
    assert _reason(exc) is Reason.FORGED  # its chain is AMD's (Turin), but it did not sign this report


def test_self_made_root_is_refused(chain: SnpTestChain) -> None:
    report = chain.report()
    with pytest.raises(AttestationError) as exc:  # the pinned AMD roots know no "TEST-SEV-Milan"
        verify_evidence(report, chain.vcek_der, INSIDE)
    assert _reason(exc) is Reason.WRONG_ROOT
    from cryptography.hazmat.primitives.serialization import Encoding
    with pytest.raises(AttestationError) as exc:  # sending the test ARK as the root does not help
        verify_evidence(real_report(), real_vcek(), INSIDE, ark_der=chain.ark.public_bytes(Encoding.DER))
    assert _reason(exc) is Reason.WRONG_ROOT
    with pytest.raises(AttestationError) as exc:  # nor an ASK that AMD's ARK did not sign
        verify_evidence(real_report(), real_vcek(), INSIDE, ask_der=chain.ask.public_bytes(Encoding.DER))
    assert _reason(exc) is Reason.WRONG_ROOT


def test_test_chain_vcek_for_other_chip_or_tcb_is_mismatch(chain: SnpTestChain) -> None:
    with pytest.raises(AttestationError) as exc:
        verify_evidence(chain.report(chip_id=b"\xc2" * 64), chain.vcek_der, INSIDE, roots=chain.roots)
    assert _reason(exc) is Reason.VCEK_MISMATCH and "chip" in str(exc.value)
    with pytest.raises(AttestationError) as exc:
        verify_evidence(chain.report(tcb=bytes([3, 0, 0, 0, 0, 0, 9, 115])), chain.vcek_der, INSIDE,
                        roots=chain.roots)
    assert _reason(exc) is Reason.VCEK_MISMATCH and "TCB" in str(exc.value)


def test_debug_policy_is_refused(chain: SnpTestChain) -> None:
    ev = verify_evidence(chain.report(policy=0x30000 | 1 << 19), chain.vcek_der, INSIDE, roots=chain.roots)
    assert ev.report.policy.debug
    with pytest.raises(AttestationError) as exc:
        check_policy(ev, AttestationPolicy())
    assert _reason(exc) is Reason.DEBUG
    check_policy(ev, AttestationPolicy(allow_debug=True))


def test_wrong_measurement_and_low_tcb_are_refused_by_policy() -> None:
    ev = verify_evidence(real_report(), real_vcek(), INSIDE)
    with pytest.raises(AttestationError) as exc:
        check_policy(ev, AttestationPolicy(allowed_measurements=(b"\x00" * 48,)))
    assert _reason(exc) is Reason.MEASUREMENT
    for low in (TcbVersion(3, 0, 9, 115), TcbVersion(3, 0, 8, 116), TcbVersion(4, 0, 0, 0)):
        with pytest.raises(AttestationError) as exc:
            check_policy(ev, AttestationPolicy(min_tcb=low))
        assert _reason(exc) is Reason.TCB_TOO_LOW
    check_policy(ev, AttestationPolicy(min_tcb=TcbVersion(2, 0, 8, 100)))


def test_real_report_does_not_bind_our_did() -> None:
    ev = verify_evidence(real_report(), real_vcek(), INSIDE)
    with pytest.raises(AttestationError) as exc:
        check_binding(ev.report, "did:fl:abc", b"\x01" * 32)
    assert _reason(exc) is Reason.BINDING


def test_test_chain_report_binding_our_did_passes(chain: SnpTestChain) -> None:
    did, key = "did:fl:node1", bytes(range(32))
    report = chain.report(report_data=binding_digest(did, key) + b"\x07" * 32)
    ev = verify_evidence(report, chain.vcek_der, INSIDE, roots=chain.roots)
    check_binding(ev.report, did, key)
    with pytest.raises(AttestationError) as exc:
        check_binding(ev.report, "did:fl:node2", key)
    assert _reason(exc) is Reason.BINDING
    with pytest.raises(AttestationError) as exc:
        check_binding(ev.report, did, bytes(32))
    assert _reason(exc) is Reason.BINDING


def test_test_chain_vcek_expiry_counts(chain: SnpTestChain) -> None:
    with pytest.raises(AttestationError) as exc:
        verify_evidence(chain.report(), chain.vcek_der, _unix(2026, 1, 2), roots=chain.roots)
    assert _reason(exc) is Reason.EXPIRED


@pytest.mark.parametrize("mutate", [
    lambda b: b[:-1],
    lambda b: b + b"\x00",
    lambda b: b"",
    lambda b: struct.pack("<I", 1) + b[4:],  # version 1
    lambda b: b[:0x34] + struct.pack("<I", 0) + b[0x38:],  # signature algo 0
    lambda b: b[:8] + struct.pack("<Q", 0) + b[16:],  # reserved policy bit 17 clear
    lambda b: b[:0x2A0] + bytes(0x200),  # no signature
])
def test_malformed_reports(mutate: object) -> None:
    raw = mutate(real_report())  # type: ignore[operator]
    with pytest.raises(AttestationError) as exc:
        verify_evidence(raw, real_vcek(), INSIDE)
    assert _reason(exc) is Reason.MALFORMED


def test_malformed_certificate() -> None:
    with pytest.raises(AttestationError) as exc:
        verify_evidence(real_report(), real_vcek()[:200], INSIDE)
    assert _reason(exc) is Reason.MALFORMED


def test_real_turin_vcek_chains_to_the_pinned_turin_root() -> None:
    from fedledger.abci_app.attest.certs import verify_chain
    info = verify_chain((FIXTURES / "vcek_turin.der").read_bytes(), INSIDE, pinned_roots())
    assert info.family == "Turin" and len(info.hwid) == 8
    assert info.tcb == TcbVersion(bootloader=0, tee=0, snp=0, microcode=9, fmc=0)


@pytest.mark.parametrize("family", ["Milan", "Genoa", "Turin"])
def test_every_pinned_ask_is_signed_by_its_pinned_ark(family: str) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    roots = pinned_roots()
    ark, ask = roots.ark[family], roots.ask[family]
    for child in (ark, ask):
        key = ark.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 4096
        key.verify(child.signature, child.tbs_certificate_bytes,
                   padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48), hashes.SHA384())


def test_turin_tcb_layout() -> None:
    assert TcbVersion.parse(bytes([1, 2, 3, 4, 0, 0, 0, 5]), "Turin") == TcbVersion(2, 3, 4, 5, fmc=1)
    assert TcbVersion.parse(bytes([1, 2, 0, 0, 0, 0, 3, 4]), "Genoa") == TcbVersion(1, 2, 3, 4)
