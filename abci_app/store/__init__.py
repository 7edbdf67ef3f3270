"""Authenticated key/value state store: bucketed sparse Merkle tree over sqlite, with proofs."""

from fedledger.abci_app.store.kvdb import StateStoreError
from fedledger.abci_app.store.merkle import EMPTY_ROOT
from fedledger.abci_app.store.proof import Proof, ProofError, verify_proof
from fedledger.abci_app.store.state import (
    CommittedStore,
    CorruptStoreError,
    HeightError,
    Snapshot,
    StaleStateError,
    WorkingState,
)

__all__ = [
    "EMPTY_ROOT",
    "CommittedStore",
    "CorruptStoreError",
    "HeightError",
    "Proof",
    "ProofError",
    "Snapshot",
    "StaleStateError",
    "StateStoreError",
    "WorkingState",
    "verify_proof",
]
