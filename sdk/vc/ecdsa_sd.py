"""ecdsa-sd-2023 issuer and holder (off-chain): create a base proof, derive a selective disclosure.

The issuer signs (with a fresh ephemeral P-256 key) every canonical statement that is not
mandatory, and signs with its own key proofHash || ephemeral key || hash(mandatory statements).
The holder keeps the mandatory statements, picks more by JSON pointer, and passes on only the
signatures of what it reveals. The chain verifies the result with abci_app/did/ecdsa_sd.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from fedledger.abci_app.did.ecdsa_sd.multikey import encode_p256_public, p256_public_multikey_bytes
from fedledger.abci_app.did.ecdsa_sd.proofvalue import BaseProof, DerivedProof, decode_base, encode_base, encode_derived
from fedledger.abci_app.did.ecdsa_sd.verify import CRYPTOSUITE, proof_hash
from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.vc.selection import canonical_id_map, canonicalize_and_group, hmac_label_map_factory, select_json_ld

__all__ = ["DeriveError", "create_base_proof", "derive_proof", "sign_p256"]


class DeriveError(ConfigError):
    """A base proof the holder cannot derive from (malformed, or pointers that select nothing)."""

    error_code = "SD_DERIVE_FAILED"


def sign_p256(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256/SHA-256 as raw 64-byte r||s, RFC 6979 deterministic (as the spec's vectors were made).

    s is not normalized to the low half: the vectors keep high-s values and verifiers accept both.
    """
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def create_base_proof(
    document: Mapping[str, Any],
    issuer_key: ec.EllipticCurvePrivateKey,
    mandatory_pointers: Sequence[str],
    *,
    created: str | None = None,
    proof_key: ec.EllipticCurvePrivateKey | None = None,
    hmac_key: bytes | None = None,
) -> dict[str, Any]:
    """Return document secured with an ecdsa-sd-2023 base proof by issuer_key (a did:key P-256 issuer).

    proof_key and hmac_key default to fresh random ones (pass them only to reproduce test vectors).
    """
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    hmac_key = os.urandom(32) if hmac_key is None else hmac_key
    proof_key = ec.generate_private_key(ec.SECP256R1()) if proof_key is None else proof_key
    issuer_mb = encode_p256_public(issuer_key.public_key())
    proof: dict[str, Any] = {"type": "DataIntegrityProof", "cryptosuite": CRYPTOSUITE}
    if created is not None:
        proof["created"] = created
    proof["verificationMethod"] = f"did:key:{issuer_mb}#{issuer_mb}"
    proof["proofPurpose"] = "assertionMethod"
    grouped = canonicalize_and_group(unsecured, hmac_label_map_factory(hmac_key), {"mandatory": mandatory_pointers})
    group = grouped.groups["mandatory"]
    mandatory_hash = hashlib.sha256("".join(group.matching.values()).encode()).digest()
    public = p256_public_multikey_bytes(proof_key.public_key())
    base_signature = sign_p256(issuer_key, proof_hash(unsecured, proof) + public + mandatory_hash)
    signatures = tuple(sign_p256(proof_key, q.encode()) for q in group.non_matching.values())
    proof["proofValue"] = encode_base(
        BaseProof(base_signature, public, hmac_key, signatures, tuple(mandatory_pointers))
    )
    return {**copy.deepcopy(unsecured), "proof": proof}


def derive_proof(secured: Mapping[str, Any], selective_pointers: Sequence[str]) -> dict[str, Any]:
    """The holder's derive: reveal the mandatory statements plus what selective_pointers select."""
    proof = secured.get("proof")
    if not isinstance(proof, Mapping):
        raise DeriveError("the credential carries no base proof")
    base = decode_base(proof.get("proofValue"))
    unsecured = {k: v for k, v in secured.items() if k != "proof"}
    mandatory, selective = list(base.mandatory_pointers), list(selective_pointers)
    grouped = canonicalize_and_group(
        unsecured,
        hmac_label_map_factory(base.hmac_key),
        {"mandatory": mandatory, "selective": selective, "combined": mandatory + selective},
    )
    combined = sorted(grouped.groups["combined"].matching)
    mandatory_idx = set(grouped.groups["mandatory"].matching)
    # Indexes into the revealed document's quads, which are the combined ones in the same order.
    adjusted = [pos for pos, i in enumerate(combined) if i in mandatory_idx]
    # base.signatures[k] signs the k-th non-mandatory quad of the full document.
    non_mandatory = sorted(grouped.groups["mandatory"].non_matching)
    if len(non_mandatory) != len(base.signatures):
        raise DeriveError("the base proof's signatures do not match this credential's statements")
    keep = set(combined)
    signatures = tuple(sig for sig, i in zip(base.signatures, non_mandatory, strict=True) if i in keep)
    reveal = select_json_ld(mandatory + selective, unsecured)
    if reveal is None:
        raise DeriveError("nothing to disclose: no mandatory or selective pointers")
    verifier_labels = {
        c14n: grouped.label_map[inp]
        for inp, c14n in canonical_id_map(grouped.groups["combined"].deskolemized_nquads).items()
    }
    derived = DerivedProof(base.base_signature, base.public_key, signatures, verifier_labels, tuple(adjusted))
    new_proof = {k: copy.deepcopy(v) for k, v in proof.items() if k != "proofValue"}
    new_proof["proofValue"] = encode_derived(derived)
    return {**reveal, "proof": new_proof}
