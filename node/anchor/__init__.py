"""Anchoring FedLedger checkpoints to a public Ethereum chain: Merkle roots out, confirmed anchor records back.

merkle.py (the tree and proofs), checkpoints.py (what a leaf says, read over RPC), config.py
(RPC URL, key, contract), keystore.py (the encrypted key file), eth.py (the JSON-RPC seam),
contract.py (the CheckpointAnchor artifact), sender.py (fees, nonces, replacement,
confirmations), public.py (pre-flight checks, deployment), service.py (`fedledger anchor run`,
`anchor check`: re-anchoring after a reorg), verify.py (`fedledger anchor verify`).
"""

from __future__ import annotations

from fedledger.abci_app.binary_merkle import MerkleProof, MerkleTree, verify_proof
from fedledger.node.anchor.checkpoints import SCHEME, Checkpoint, CheckpointVersion, RPCCheckpoints
from fedledger.node.anchor.config import AnchorConfig, load_config
from fedledger.node.anchor.errors import (
    AnchorConfigError,
    AnchorError,
    AnchorTxError,
    PublicChainError,
    PublicChainUnavailable,
    TxDroppedError,
)
from fedledger.node.anchor.public import Deployed, PublicChain
from fedledger.node.anchor.service import AnchorResult, AnchorService, ChainRecorder
from fedledger.node.anchor.verify import ProofBundle, Verdict, build_bundle, verify_bundle

__all__ = [
    "SCHEME",
    "AnchorConfig",
    "AnchorConfigError",
    "AnchorError",
    "AnchorResult",
    "AnchorService",
    "AnchorTxError",
    "ChainRecorder",
    "Checkpoint",
    "CheckpointVersion",
    "Deployed",
    "MerkleProof",
    "MerkleTree",
    "ProofBundle",
    "PublicChain",
    "PublicChainError",
    "PublicChainUnavailable",
    "RPCCheckpoints",
    "TxDroppedError",
    "Verdict",
    "build_bundle",
    "load_config",
    "verify_bundle",
    "verify_proof",
]
