"""The attestation module's tx body (submit_attestation) and the TEE requirement's stateless parser."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.attest.report import REPORT_SIZE
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.attestation.records import TcbRecord, TeeRequirement
from fedledger.abci_app.modules.fields import int_value, require_fields

__all__ = ["MAX_CERT", "MAX_MEASUREMENTS", "PARSERS", "SubmitAttestation", "parse_tee_requirement"]

MAX_CERT = 8192  # bytes of one DER/PEM certificate (AMD's are under 2 KiB DER)
MAX_MEASUREMENTS = 32
_DID = re.compile(r"^did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,200}$")
_MEASUREMENT = re.compile(r"^[0-9a-f]{96}$")
TCB_FIELDS = ("bootloader", "fmc", "microcode", "snp", "tee")


def _b64(body: dict[str, Any], name: str, limit: int) -> bytes:
    text = body[name]
    if not isinstance(text, str) or len(text) > 4 * limit // 3 + 4:
        raise TxError(Code.ATTESTATION_INVALID, f"{name} must be base64 text of at most {limit} bytes")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TxError(Code.ATTESTATION_INVALID, f"{name} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:  # one encoding per value, so tx bytes are canonical
        raise TxError(Code.ATTESTATION_INVALID, f"{name} must be canonical padded base64")
    return raw


@dataclass(frozen=True)
class SubmitAttestation:
    """A member submits its VM's SEV-SNP report with the VCEK (and optionally the ASK/ARK) that vouch for it."""

    did: str
    report: bytes
    vcek_cert: bytes
    ask_cert: bytes | None
    ark_cert: bytes | None

    @staticmethod
    def parse(body: dict[str, Any]) -> SubmitAttestation:
        """Validate encodings and sizes; the evidence itself is judged in the handler, at block time."""
        require_fields(body, ("did", "report", "vcek_cert"), ("ask_cert", "ark_cert"))
        did = body["did"]
        if not isinstance(did, str) or not _DID.match(did):
            raise TxError(Code.INVALID_BODY, "did must be a DID (did:<method>:<id>)")
        report = _b64(body, "report", REPORT_SIZE)
        if len(report) != REPORT_SIZE:
            raise TxError(Code.ATTESTATION_INVALID, f"report must be the {REPORT_SIZE}-byte SEV-SNP "
                                                    f"ATTESTATION_REPORT, got {len(report)} bytes")
        return SubmitAttestation(did=did, report=report, vcek_cert=_b64(body, "vcek_cert", MAX_CERT),
                                 ask_cert=_b64(body, "ask_cert", MAX_CERT) if "ask_cert" in body else None,
                                 ark_cert=_b64(body, "ark_cert", MAX_CERT) if "ark_cert" in body else None)


def parse_tee_requirement(value: Any) -> TeeRequirement:
    """Validate {measurements: [hex96, ...] sorted, min_tcb: {bootloader, tee, snp, microcode[, fmc]}}."""
    if not isinstance(value, dict):
        raise TxError(Code.INVALID_BODY, "require_tee must be an object {measurements, min_tcb}")
    require_fields(value, ("measurements", "min_tcb"))
    ms = value["measurements"]
    if (not isinstance(ms, list) or len(ms) > MAX_MEASUREMENTS
            or not all(isinstance(m, str) and _MEASUREMENT.match(m) for m in ms) or ms != sorted(set(ms))):
        raise TxError(Code.INVALID_BODY, f"require_tee.measurements must be a sorted list of at most "
                                         f"{MAX_MEASUREMENTS} distinct lowercase hex SHA-384 launch measurements")
    tcb = value["min_tcb"]
    if not isinstance(tcb, dict) or not set(tcb) <= set(TCB_FIELDS) or not {"bootloader", "tee", "snp",
                                                                              "microcode"} <= set(tcb):
        raise TxError(Code.INVALID_BODY, "require_tee.min_tcb must be {bootloader, tee, snp, microcode[, fmc]}")
    levels = {k: int_value(tcb.get(k, 0), f"require_tee.min_tcb.{k}", 0, 255) for k in TCB_FIELDS}
    min_tcb: TcbRecord = {"bootloader": levels["bootloader"], "tee": levels["tee"], "snp": levels["snp"],
                          "microcode": levels["microcode"], "fmc": levels["fmc"]}
    return {"measurements": list(ms), "min_tcb": min_tcb}


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {"submit_attestation": SubmitAttestation.parse}
