"""zkDPS for the aggregator: which contributions carry a chain-verified norm bound, and what that bound is.

Under SecAgg the aggregator never sees an individual update, so it cannot measure a norm, and the
screen's norm claim (advertised with the keys) is unchecked. On a task that requires norm proofs
(task record `norm_proof` {clip, dim}) the chain refuses every commit without an ezkl proof, which
every validator verified, that the committed update has ||u||_2 <= clip (up to the fixed-point slack
of sdk/compliance/circuit.py). The pipeline uses that in two ways:

- `norm_screen` keeps only contributions whose record says norm_proof "verified" (defence in depth:
  the chain should already have refused the others) and drops the rest with a reason;
- `update_hash_mismatch` (plain rounds, where the aggregator sees each update) recomputes the
  update's Poseidon hash and drops it if it is not the one its proof is about;
- `trusted_norm_bound` is the bound the robust rule may take as given for each kept contribution,
  instead of an estimate from claims: a verified group mean has norm <= clip before its DP noise.

What it does NOT guarantee: the proof's public input is the Poseidon hash of the client's clipped,
unmasked update (before its DP noise share). Nothing binds that hash to the masked SecAgg payload
the client committed by sha256: a client could prove a small update and mask a different one.
Binding them needs a proof over the masking too (RoFL / EIFFeL-style: a proof that the masked
vector is the proven one plus the pairwise masks); it is not built.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

__all__ = ["NO_NORM_PROOF", "norm_screen", "requires_norm_proof", "trusted_norm_bound", "update_hash_mismatch"]

NO_NORM_PROOF = "no chain-verified norm proof"


def requires_norm_proof(task: Mapping[str, Any]) -> bool:
    """True if the task's commits must carry norm proofs (the chain verified each one)."""
    return isinstance(task.get("norm_proof"), Mapping)


def trusted_norm_bound(task: Mapping[str, Any]) -> Decimal | None:
    """The L2 bound every verified contribution of the task satisfies (before DP noise), None if none is proved."""
    return Decimal(str(task["norm_proof"]["clip"])) if requires_norm_proof(task) else None


def norm_screen(task: Mapping[str, Any], contributions: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """participant -> why, for each contribution of a norm-proof task that lacks a verified proof ({} otherwise)."""
    if not requires_norm_proof(task):
        return {}
    return {str(c["participant"]): NO_NORM_PROOF for c in contributions if c.get("norm_proof") != "verified"}


def update_hash_mismatch(contribution: Mapping[str, Any], vector: Any) -> str | None:
    """Why a plain (unmasked) update does not match its verified proof's update hash, None if it does.

    Without SecAgg the aggregator sees the update, so it can close the gap SecAgg leaves open: the
    Poseidon hash it recomputes (ezkl's, at the circuit's input scale) must be the one the proof
    exposed, or the proof was about another update.
    """
    from fedledger.sdk.zk.proof import input_hash_of
    from fedledger.sdk.zk.setup import SCALE

    expected = contribution.get("update_hash")
    if contribution.get("norm_proof") != "verified" or not isinstance(expected, str):
        return NO_NORM_PROOF
    if input_hash_of(vector, SCALE) != expected:
        return "the update is not the one its norm proof is about (Poseidon hash differs)"
    return None
