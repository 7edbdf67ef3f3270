"""Off-chain W3C verifiable-credential tooling: ecdsa-sd-2023 issuer base proofs and holder derivation.

selection.py (JSON pointer selection, skolemized canonical grouping), ecdsa_sd.py (base proof,
derive). The chain-side verifier is fedledger.abci_app.did.ecdsa_sd.
"""

from fedledger.sdk.vc.ecdsa_sd import DeriveError, create_base_proof, derive_proof, sign_p256
from fedledger.sdk.vc.selection import SelectionError, select_json_ld

__all__ = ["DeriveError", "SelectionError", "create_base_proof", "derive_proof", "select_json_ld", "sign_p256"]
