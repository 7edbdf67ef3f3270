"""admit_sd through the real in-process state machine: a derived ecdsa-sd-2023 organization credential."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.did.didkey import did_from_private_key
from fedledger.abci_app.did.ecdsa_sd.multikey import did_key_p256
from fedledger.abci_app.errors import Code
from fedledger.abci_app.store import CommittedStore
from fedledger.sdk.vc import create_base_proof, derive_proof
from tests.support import Chain, Signer

ORG = "hospital-a"
# Deterministic issuer keys (fixed scalars): the registered one and an outsider.
ISSUER = ec.derive_private_key(0x1F2E3D4C5B6A79880123456789ABCDEF0123456789ABCDEF0123456789ABCDEF, ec.SECP256R1())
OUTSIDER = ec.derive_private_key(0x2F2E3D4C5B6A79880123456789ABCDEF0123456789ABCDEF0123456789ABCDEF, ec.SECP256R1())
MANDATORY = [
    "/issuer",
    "/type",
    "/validFrom",
    "/validUntil",
    "/credentialSubject/id",
    "/credentialSubject/organization",
]


def _genesis() -> bytes:
    return canonical_bytes(
        {
            "identity": {
                "organizations": [
                    {
                        "id": ORG,
                        "name": "Hospital A",
                        "enrollment_cap": 10,
                        "issuers": [did_key_p256(ISSUER.public_key())],
                        "disclosure_policy": {"role": ["trainer", "evaluator"], "jurisdiction": ["DE", "FR"]},
                    }
                ]
            }
        }
    )


def _credential(
    signer: Signer,
    *,
    issuer: ec.EllipticCurvePrivateKey = ISSUER,
    jurisdiction: str = "DE",
    valid_until: str = "2100-01-01T00:00:00Z",
) -> dict[str, Any]:
    doc = {
        "@context": ["https://www.w3.org/ns/credentials/v2", "https://fedledger.dev/contexts/org/v1"],
        "type": ["VerifiableCredential", "OrganizationMemberCredential"],
        "issuer": did_key_p256(issuer.public_key()),
        "validFrom": "1970-01-01T00:00:00Z",
        "validUntil": valid_until,
        "credentialSubject": {
            "id": did_from_private_key(signer.key),
            "organization": ORG,
            "role": "trainer",
            "jurisdiction": jurisdiction,
            "clearance": "secret-level-3",
        },
    }
    return create_base_proof(doc, issuer, MANDATORY, created="2026-01-01T00:00:00Z")


@pytest.fixture()
def chain() -> Chain:
    return Chain(CommittedStore(":memory:"), app_state=_genesis())


def _member(chain: Chain, signer: Signer) -> dict[str, Any]:
    res = chain.sm.query(f"/member/{did_from_private_key(signer.key)}", b"", False)
    assert res.code == 0, res.log
    return dict(json.loads(res.value))


def test_happy_path_admits_on_disclosed_claims_only(chain: Chain) -> None:
    signer = Signer(501)
    derived = derive_proof(_credential(signer), ["/credentialSubject/role", "/credentialSubject/jurisdiction"])
    assert "clearance" not in derived["credentialSubject"]  # withheld: the chain never sees it
    chain.ok(signer.tx("admit_sd", {"credential": derived}))
    member = _member(chain, signer)
    assert (member["organization"], member["role"], member["status"]) == (ORG, "trainer", "active")
    assert member["issuer"] == did_key_p256(ISSUER.public_key())


def test_missing_jurisdiction_is_refused_with_reason(chain: Chain) -> None:
    signer = Signer(502)
    derived = derive_proof(_credential(signer), ["/credentialSubject/role"])
    (res,) = chain.block(signer.tx("admit_sd", {"credential": derived}))
    assert res.code == Code.SD_CLAIMS_DENIED
    assert "requires the claim 'jurisdiction'" in res.log


def test_jurisdiction_outside_policy_is_refused(chain: Chain) -> None:
    signer = Signer(503)
    derived = derive_proof(
        _credential(signer, jurisdiction="US"), ["/credentialSubject/role", "/credentialSubject/jurisdiction"]
    )
    (res,) = chain.block(signer.tx("admit_sd", {"credential": derived}))
    assert res.code == Code.SD_CLAIMS_DENIED and "'US'" in res.log


def test_tampered_disclosed_claim_is_refused(chain: Chain) -> None:
    signer = Signer(504)
    derived = derive_proof(
        _credential(signer, jurisdiction="US"), ["/credentialSubject/role", "/credentialSubject/jurisdiction"]
    )
    derived["credentialSubject"]["jurisdiction"] = "DE"
    (res,) = chain.block(signer.tx("admit_sd", {"credential": derived}))
    assert res.code == Code.SD_PROOF_INVALID, res.log


def test_dropped_mandatory_statement_is_refused(chain: Chain) -> None:
    signer = Signer(505)
    derived = derive_proof(_credential(signer), ["/credentialSubject/role", "/credentialSubject/jurisdiction"])
    forged = copy.deepcopy(derived)
    del forged["validUntil"]  # a mandatory statement: the issuer's base signature covers it
    (res,) = chain.block(signer.tx("admit_sd", {"credential": forged}))
    assert res.code == Code.SD_PROOF_INVALID, res.log


def test_unregistered_issuer_is_refused(chain: Chain) -> None:
    signer = Signer(506)
    derived = derive_proof(
        _credential(signer, issuer=OUTSIDER), ["/credentialSubject/role", "/credentialSubject/jurisdiction"]
    )
    (res,) = chain.block(signer.tx("admit_sd", {"credential": derived}))
    assert res.code == Code.CREDENTIAL_INVALID and "not a registered issuer" in res.log


def test_expired_at_block_time_is_refused(chain: Chain) -> None:
    signer = Signer(507)
    derived = derive_proof(
        _credential(signer, valid_until="1970-01-01T00:00:01Z"),
        ["/credentialSubject/role", "/credentialSubject/jurisdiction"],
    )
    (res,) = chain.block(signer.tx("admit_sd", {"credential": derived}))
    assert res.code == Code.CREDENTIAL_EXPIRED


def test_someone_elses_credential_is_refused(chain: Chain) -> None:
    holder, thief = Signer(508), Signer(509)
    derived = derive_proof(_credential(holder), ["/credentialSubject/role", "/credentialSubject/jurisdiction"])
    (res,) = chain.block(thief.tx("admit_sd", {"credential": derived}))
    assert res.code == Code.UNAUTHORIZED


def test_unknown_context_is_refused_without_fetching(chain: Chain) -> None:
    signer = Signer(510)
    derived = derive_proof(_credential(signer), ["/credentialSubject/role", "/credentialSubject/jurisdiction"])
    derived["@context"].append("https://example.invalid/ctx")
    (res,) = chain.block(signer.tx("admit_sd", {"credential": derived}))
    assert res.code == Code.SD_CONTEXT_UNKNOWN and "not bundled" in res.log
