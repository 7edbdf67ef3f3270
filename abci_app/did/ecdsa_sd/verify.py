"""Verify a derived ecdsa-sd-2023 proof (W3C Data Integrity ECDSA Cryptosuites v1.0, section 3.6).

Pure and offline: contexts come only from the bundled loader. The steps, in the spec's order:
parse the derived proofValue; hash the canonical proof configuration; canonicalize the revealed
document and rename its blank nodes through the disclosed label map; split the sorted quads into
mandatory (by index) and non-mandatory; check the issuer's base signature over
proofHash || ephemeral public key || mandatoryHash; check one ephemeral-key signature per
non-mandatory quad. Any mismatch raises SDProofError with the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fedledger.abci_app.did.ecdsa_sd.contexts import UnknownContextError
from fedledger.abci_app.did.ecdsa_sd.multikey import MultikeyError, decode_p256_public, p256_public_from_bytes
from fedledger.abci_app.did.ecdsa_sd.offline_pyld import jsonld
from fedledger.abci_app.did.ecdsa_sd.proofvalue import ProofValueError, decode_derived
from fedledger.abci_app.did.ecdsa_sd.rdf import canonical_nquads, relabel_sorted
from fedledger.abci_app.errors import ConfigError

__all__ = [
    "CRYPTOSUITE",
    "SDProofError",
    "VerifiedDisclosure",
    "VerifyData",
    "create_verify_data",
    "issuer_key_from_verification_method",
    "proof_hash",
    "verify_derived",
    "verify_p256",
]

CRYPTOSUITE = "ecdsa-sd-2023"
# A credential with more blank nodes is refused before canonicalization (whose worst case is
# factorial in indistinguishable blank nodes): admission credentials need two or three.
MAX_BLANK_NODES = 16


class SDProofError(ConfigError):
    """A derived ecdsa-sd-2023 proof that does not verify; the message says which check failed."""

    error_code = "SD_PROOF_INVALID"


@dataclass(frozen=True)
class VerifyData:
    """The spec's createVerifyData output (checked against the vectors byte for byte)."""

    base_signature: bytes
    proof_hash: bytes
    public_key: bytes
    signatures: tuple[bytes, ...]
    nquads: tuple[str, ...]
    mandatory: tuple[str, ...]
    non_mandatory: tuple[str, ...]
    mandatory_hash: bytes


@dataclass(frozen=True)
class VerifiedDisclosure:
    """What a verified derived credential establishes: who signed, and exactly what was disclosed."""

    verification_method: str
    issuer_did: str
    created: str | None
    document: dict[str, Any]  # the revealed document without its proof
    nquads: tuple[str, ...]  # every statement the proof covers (mandatory and selectively disclosed)
    base_signature: bytes  # the issuer's signature: the same in every disclosure derived from one credential


def _proof_config(document: Mapping[str, Any], proof: Mapping[str, Any]) -> dict[str, Any]:
    config = {k: v for k, v in proof.items() if k != "proofValue"}
    config["@context"] = document["@context"]
    return config


def proof_hash(document: Mapping[str, Any], proof: Mapping[str, Any]) -> bytes:
    """SHA-256 of the canonical proof configuration (the proof without proofValue, under the document's context)."""
    quads = canonical_nquads(_proof_config(document, proof), MAX_BLANK_NODES)
    return hashlib.sha256("".join(quads).encode()).digest()


def _split_proof(secured: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(secured, Mapping) or "@context" not in secured:
        raise SDProofError("a secured document must be a JSON object with an @context")
    proof = secured.get("proof")
    if not isinstance(proof, Mapping):
        raise SDProofError("the document carries no single proof object")
    if proof.get("type") != "DataIntegrityProof" or proof.get("cryptosuite") != CRYPTOSUITE:
        raise SDProofError(f"proof must be a DataIntegrityProof with cryptosuite {CRYPTOSUITE}")
    if proof.get("proofPurpose") != "assertionMethod":
        raise SDProofError("proofPurpose must be assertionMethod")
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    return unsecured, dict(proof)


def create_verify_data(secured: Mapping[str, Any]) -> VerifyData:
    """The spec's createVerifyData: everything verification needs, derived from the revealed document."""
    unsecured, proof = _split_proof(secured)
    try:
        parsed = decode_derived(proof.get("proofValue"))
    except ProofValueError as exc:
        raise SDProofError(str(exc)) from exc
    try:
        p_hash = proof_hash(unsecured, proof)
        nquads = relabel_sorted(canonical_nquads(unsecured, MAX_BLANK_NODES), parsed.label_map)
    except UnknownContextError:
        raise  # a ValueError too, but its own reason (and code)
    except jsonld.JsonLdError as exc:
        raise SDProofError(f"not valid JSON-LD: {exc}") from exc
    except KeyError as exc:
        raise SDProofError(f"blank node {exc} of the revealed document is not in the proof's label map") from exc
    except ValueError as exc:
        raise SDProofError(f"revealed document refused: {exc}") from exc
    if parsed.mandatory_indexes and parsed.mandatory_indexes[-1] >= len(nquads):
        raise SDProofError(f"mandatory index {parsed.mandatory_indexes[-1]} is beyond the {len(nquads)} revealed quads")
    wanted = set(parsed.mandatory_indexes)
    mandatory = tuple(q for i, q in enumerate(nquads) if i in wanted)
    non_mandatory = tuple(q for i, q in enumerate(nquads) if i not in wanted)
    return VerifyData(
        base_signature=parsed.base_signature,
        proof_hash=p_hash,
        public_key=parsed.public_key,
        signatures=parsed.signatures,
        nquads=tuple(nquads),
        mandatory=mandatory,
        non_mandatory=non_mandatory,
        mandatory_hash=hashlib.sha256("".join(mandatory).encode()).digest(),
    )


def verify_p256(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """ECDSA P-256/SHA-256 over data with a raw 64-byte r||s signature."""
    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def issuer_key_from_verification_method(vm: object) -> tuple[str, ec.EllipticCurvePublicKey]:
    """(issuer DID, key) from a P-256 did:key verification method 'did:key:zDna...#zDna...'."""
    if not isinstance(vm, str) or not vm.startswith("did:key:") or "#" not in vm:
        raise SDProofError("verificationMethod must be a did:key DID URL 'did:key:<mb>#<mb>'")
    did, fragment = vm.split("#", 1)
    if did[len("did:key:") :] != fragment:
        raise SDProofError("a did:key verification method's fragment must repeat its key")
    try:
        return did, decode_p256_public(fragment)
    except MultikeyError as exc:
        raise SDProofError(f"verificationMethod: {exc}") from exc


def verify_derived(secured: Mapping[str, Any]) -> VerifiedDisclosure:
    """Verify a derived ecdsa-sd-2023 proof: what was disclosed, or SDProofError / UnknownContextError."""
    unsecured, proof = _split_proof(secured)
    issuer_did, issuer_key = issuer_key_from_verification_method(proof.get("verificationMethod"))
    data = create_verify_data(secured)
    try:
        ephemeral = p256_public_from_bytes(data.public_key)
    except MultikeyError as exc:
        raise SDProofError(f"ephemeral proof key: {exc}") from exc
    if len(data.signatures) != len(data.non_mandatory):
        raise SDProofError(f"{len(data.signatures)} signatures for {len(data.non_mandatory)} non-mandatory statements")
    if not verify_p256(issuer_key, data.base_signature, data.proof_hash + data.public_key + data.mandatory_hash):
        raise SDProofError("the issuer's base signature does not cover these mandatory statements and proof options")
    for index, (sig, quad) in enumerate(zip(data.signatures, data.non_mandatory, strict=True)):
        if not verify_p256(ephemeral, sig, quad.encode()):
            raise SDProofError(f"signature {index} does not cover disclosed statement {quad.strip()!r}")
    created = proof.get("created")
    return VerifiedDisclosure(
        verification_method=str(proof["verificationMethod"]),
        issuer_did=issuer_did,
        created=created if isinstance(created, str) else None,
        document=unsecured,
        nquads=data.nquads,
        base_signature=data.base_signature,
    )
