"""The client's side of zkDPS: one norm circuit per task (setup once), one proof per clipped update.

The setup goes through sdk/zk's CircuitSetup (deterministic settings, keys cached on disk), so the
settings and vk sha256 are reproducible by anyone holding the task's clip bound, dimension and the
chain's SRS. `task_param()` is what create_task carries (settings and vk, zlib + base64, the clip
bound and the dimension); `NormProof.body()` is what commit_contribution carries.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.compliance.circuit import norm_circuit, parse_clip
from fedledger.sdk.compliance.errors import NormBoundExceededError
from fedledger.sdk.zk.errors import ZkProvingError
from fedledger.sdk.zk.proof import Proof, input_hash_of, prove
from fedledger.sdk.zk.setup import SCALE, CircuitSetup
from fedledger.sdk.zk.srs import SrsFile

__all__ = ["NormCircuit", "NormProof", "prove_norm"]

_MODE = "hashed"


@dataclass(frozen=True)
class NormCircuit:
    """A task's norm-bound circuit: its clip bound, dimension and ezkl setup."""

    clip: str
    dim: int
    setup: CircuitSetup

    @staticmethod
    def build(task_id: str, clip: str, dim: int, srs: SrsFile, cache_dir: Path) -> NormCircuit:
        """Build (or reuse from `cache_dir`) the circuit for bound `clip` over `dim` entries."""
        parse_clip(clip)
        setup = CircuitSetup.build(f"norm-{task_id}", 0, _MODE, norm_circuit(clip, dim), srs, Path(cache_dir))
        return NormCircuit(clip=clip, dim=dim, setup=setup)

    def task_param(self) -> dict[str, Any]:
        """The create_task `norm_proof` field: the circuit the chain verifies this task's commits against."""
        return {"clip": self.clip, "dim": self.dim,
                "settings": base64.b64encode(zlib.compress(self.setup.settings, 9)).decode(),
                "vk": base64.b64encode(zlib.compress(self.setup.vk, 9)).decode()}


@dataclass(frozen=True)
class NormProof:
    """A proof that the update whose Poseidon hash is `update_hash` has L2 norm within the task's bound."""

    proof: Proof

    @property
    def update_hash(self) -> str:
        """0x-hex Poseidon hash of the quantized update (the proof's first public instance)."""
        assert self.proof.input_hash is not None  # hashed-input circuits always expose it
        return self.proof.input_hash

    def body(self) -> dict[str, Any]:
        """The commit_contribution `norm_proof` field: {proof (base64), instances}."""
        return {"proof": base64.b64encode(self.proof.proof).decode(), "instances": list(self.proof.instances)}


def prove_norm(circuit: NormCircuit, update: npt.ArrayLike) -> NormProof:
    """Prove that the flat `update` is within the task's clip bound.

    NormBoundExceededError when it is not (the circuit's output would be 0, which the chain refuses,
    or the witness does not exist at all): clip before proving. ZkProvingError for a wrong shape.
    """
    arr = np.asarray(update, dtype=np.float32).reshape(-1)
    if arr.size != circuit.dim:
        raise ZkProvingError(f"the update has {arr.size} entries, the task's norm circuit takes {circuit.dim}")
    try:
        proof = prove(circuit.setup, arr)
    except ZkProvingError as exc:
        if "decomposition" in str(exc) or "synthesis" in str(exc):
            raise NormBoundExceededError(f"the update's norm is far above the bound {circuit.clip}: no witness "
                                         "exists; clip it first") from None
        raise
    if proof.outputs != (1,):
        raise NormBoundExceededError(f"the update's norm is above the bound {circuit.clip} (circuit output "
                                     f"{proof.outputs}): clip it first")
    if proof.input_hash != input_hash_of(arr, SCALE):
        raise ZkProvingError("the proof's input hash is not this update's Poseidon hash")  # ezkl changed layout
    return NormProof(proof)
