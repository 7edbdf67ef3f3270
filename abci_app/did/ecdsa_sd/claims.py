"""What a verified organization-member disclosure says, read from the signed statements themselves.

The claims are taken from the verified N-Quads, never from the JSON: JSON members that expand
to no RDF statement are not signed, so trusting the JSON would let a holder add unsigned claims.
The credential shape (https://fedledger.dev/contexts/org/v1):

  {"@context": [credentials/v2, fedledger org/v1], "type": ["VerifiableCredential", "OrganizationMemberCredential"],
   "issuer": "did:key:zDna...", "validFrom": ..., "validUntil": ...,
   "credentialSubject": {"id": "did:key:z6Mk...", "organization": "hospital-a", "role": "trainer",
                          "jurisdiction": "DE", ...}}
"""

from __future__ import annotations

from dataclasses import dataclass

from fedledger.abci_app.did.ecdsa_sd.rdf import parse_nquad
from fedledger.abci_app.did.ecdsa_sd.verify import SDProofError, VerifiedDisclosure
from fedledger.abci_app.did.vc import TimeFormatError, parse_time

__all__ = ["CREDENTIAL_TYPE", "NS", "OrgClaims", "org_claims"]

NS = "https://fedledger.dev/ns/org#"
CREDENTIAL_TYPE = NS + "OrganizationMemberCredential"
_CRED = "https://www.w3.org/2018/credentials#"
_RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
_DATETIME = "^^<http://www.w3.org/2001/XMLSchema#dateTime>"


@dataclass(frozen=True)
class OrgClaims:
    """The disclosed, signed facts of an organization-member credential."""

    issuer: str
    subject: str
    valid_from: int  # unix seconds
    valid_until: int
    claims: dict[str, str]  # fedledger org claim name -> value, only what the holder disclosed
    credential_id: str  # stable across every disclosure of one issued credential


def _iri(term: str, what: str) -> str:
    if not (term.startswith("<") and term.endswith(">")):
        raise SDProofError(f"{what} must be an IRI (a DID), not {term!r}")
    return term[1:-1]


def _literal(term: str, what: str, suffix: str = "") -> str:
    if not term.startswith('"') or not term.endswith('"' + suffix) or "\\" in term:
        raise SDProofError(f"{what} must be a plain literal{' ' + suffix if suffix else ''}, not {term!r}")
    return term[1 : len(term) - len(suffix) - 1]


def _one(values: list[str], what: str) -> str:
    if len(values) != 1:
        raise SDProofError(f"the disclosure must reveal exactly one {what} (it reveals {len(values)})")
    return values[0]


def org_claims(disclosure: VerifiedDisclosure) -> OrgClaims:
    """Read issuer, subject, validity window and org claims from the verified statements."""
    quads = [parse_nquad(q) for q in disclosure.nquads]
    creds = [q[0] for q in quads if q[1] == _RDF_TYPE and q[2] == f"<{CREDENTIAL_TYPE}>" and len(q) == 3]
    cred = _one(creds, "OrganizationMemberCredential node (disclose /type)")
    about = [q for q in quads if q[0] == cred and len(q) == 3]

    def values(predicate: str) -> list[str]:
        return [q[2] for q in about if q[1] == f"<{_CRED}{predicate}>"]

    issuer = _iri(_one(values("issuer"), "issuer"), "issuer")
    if issuer != disclosure.issuer_did:
        raise SDProofError(f"the credential's issuer {issuer} is not the DID that signed it ({disclosure.issuer_did})")
    try:
        valid_from = parse_time(_literal(_one(values("validFrom"), "validFrom"), "validFrom", _DATETIME))
        valid_until = parse_time(_literal(_one(values("validUntil"), "validUntil"), "validUntil", _DATETIME))
    except TimeFormatError as exc:
        raise SDProofError(f"validity window: {exc}") from exc
    subject = _iri(_one(values("credentialSubject"), "credentialSubject (disclose its id)"), "credentialSubject")
    claims: dict[str, str] = {}
    for q in quads:
        if q[0] == f"<{subject}>" and q[1].startswith(f"<{NS}") and len(q) == 3:
            name = q[1][len(NS) + 1 : -1]
            if name in claims:
                raise SDProofError(f"claim {name!r} is disclosed twice; one value each")
            claims[name] = _literal(q[2], f"claim {name!r}")
    return OrgClaims(
        issuer=issuer,
        subject=subject,
        valid_from=valid_from,
        valid_until=valid_until,
        claims=claims,
        credential_id="urn:ecdsa-sd:" + disclosure.base_signature.hex(),
    )
