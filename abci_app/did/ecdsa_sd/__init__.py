"""W3C Data Integrity ecdsa-sd-2023 (selective disclosure over P-256): the consensus-side verifier.

Pure and offline: JSON-LD contexts are served only from the bundled files in contexts/. Files:
contexts.py (the loader), rdf.py (RDFC-1.0 N-Quads, blank-node relabeling), multikey.py (P-256
Multikey / did:key), proofvalue.py (CBOR base/derived proofValue), verify.py (derived-proof check),
claims.py (the signed claims of an organization-member disclosure, read from its N-Quads).
The issuer's base proof and the holder's derive live off-chain in sdk/vc/.
"""

from fedledger.abci_app.did.ecdsa_sd.claims import OrgClaims, org_claims
from fedledger.abci_app.did.ecdsa_sd.contexts import BUNDLED_CONTEXTS, UnknownContextError, document_loader
from fedledger.abci_app.did.ecdsa_sd.proofvalue import ProofValueError
from fedledger.abci_app.did.ecdsa_sd.verify import (
    CRYPTOSUITE,
    SDProofError,
    VerifiedDisclosure,
    create_verify_data,
    verify_derived,
)

__all__ = [
    "BUNDLED_CONTEXTS",
    "CRYPTOSUITE",
    "OrgClaims",
    "ProofValueError",
    "SDProofError",
    "UnknownContextError",
    "VerifiedDisclosure",
    "create_verify_data",
    "document_loader",
    "org_claims",
    "verify_derived",
]
