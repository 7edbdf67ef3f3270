"""Proving one inference with a CircuitSetup, and verifying a proof locally with the chain's own verifier code.

A Proof is what travels: the raw Halo2 proof bytes and the public instances (ezkl's little-endian
hex field elements), plus the decoded outputs (signed fixed-point ints) and, in hashed mode, the
Poseidon hash of the input, which binds the proof to the client's exact input.
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import TxError
from fedledger.abci_app.modules.zk.circuit import circuit_facts
from fedledger.abci_app.modules.zk.instances import decode_instances
from fedledger.abci_app.modules.zk.verifier import ZkVerifier, run_ezkl
from fedledger.sdk.zk.errors import ZkProofError, ZkProvingError
from fedledger.sdk.zk.setup import CircuitSetup

__all__ = ["Proof", "input_hash_of", "prove", "verify_proof", "witness_outputs"]


@dataclass(frozen=True)
class Proof:
    """A proof of one inference and its decoded public values."""

    proof: bytes
    instances: tuple[str, ...]
    input_hash: str | None  # 0x-hex Poseidon hash of the input (hashed mode)
    outputs: tuple[int, ...]  # fixed-point ints; value = int / 2^output_scale
    output_scale: int

    def output_values(self) -> list[float]:
        """The outputs as floats (for people; the chain keeps the ints)."""
        return [o / 2**self.output_scale for o in self.outputs]

    def to_json(self) -> dict[str, Any]:
        """JSON form (proof base64) for HTTP answers and tx bodies."""
        return {"proof": base64.b64encode(self.proof).decode(), "instances": list(self.instances),
                "input_hash": self.input_hash, "outputs": list(self.outputs), "output_scale": self.output_scale}

    @staticmethod
    def from_json(doc: Any, settings: bytes, input_mode: str) -> Proof:
        """Parse a proof's JSON form, re-deriving the decoded values from the instances (never trusting them)."""
        try:
            raw = base64.b64decode(doc["proof"], validate=True)
            instances = tuple(str(i) for i in doc["instances"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ZkProofError(f"not a proof: {exc}") from None
        return _decoded(raw, instances, settings, input_mode)


def _decoded(raw: bytes, instances: tuple[str, ...], settings: bytes, input_mode: str) -> Proof:
    facts = circuit_facts(settings, input_mode)
    try:
        input_hash, outputs = decode_instances(instances, facts)
    except TxError as exc:
        raise ZkProofError(exc.log) from None
    return Proof(proof=raw, instances=instances, input_hash=input_hash, outputs=tuple(outputs),
                 output_scale=facts.output_scale)


def _input_file(folder: Path, setup: CircuitSetup, x: npt.ArrayLike) -> Path:
    arr = np.asarray(x, dtype=np.float32).reshape(-1)
    if arr.size != setup.input_dim or not np.all(np.isfinite(arr)):
        raise ZkProvingError(f"the input must be {setup.input_dim} finite numbers, got {arr.size}")
    path = folder / "input.json"
    path.write_text(json.dumps({"input_data": [arr.tolist()]}))
    return path


def witness_outputs(setup: CircuitSetup, x: npt.ArrayLike) -> list[float]:
    """The quantized circuit's outputs for `x` (a witness, no proof: for accuracy checks)."""
    import ezkl

    with tempfile.TemporaryDirectory(prefix="fedledger-zkw-") as tmp:
        folder = Path(tmp)
        inp = _input_file(folder, setup, x)
        run_ezkl(ezkl.gen_witness(str(inp), str(setup.compiled_path), str(folder / "w.json"), None, None))
        rescaled = json.loads((folder / "w.json").read_text())["pretty_elements"]["rescaled_outputs"][0]
        return [float(v) for v in rescaled]


def prove(setup: CircuitSetup, x: npt.ArrayLike) -> Proof:
    """Prove one inference of the version's circuit on input `x` (shape [input_dim] or [1, input_dim])."""
    import ezkl

    with tempfile.TemporaryDirectory(prefix="fedledger-zkp-") as tmp:
        folder = Path(tmp)
        inp = _input_file(folder, setup, x)
        try:
            run_ezkl(ezkl.gen_witness(str(inp), str(setup.compiled_path), str(folder / "w.json"),
                                      str(setup.folder / "vk"), str(setup.srs.path)))
            run_ezkl(ezkl.prove(str(folder / "w.json"), str(setup.compiled_path), str(setup.pk_path),
                                str(folder / "proof.json"), str(setup.srs.path)))
        except (RuntimeError, ValueError) as exc:
            raise ZkProvingError(f"ezkl could not prove this inference: {exc}") from None
        doc = json.loads((folder / "proof.json").read_text())
    raw = bytes(doc["proof"]) if isinstance(doc["proof"], list) else bytes.fromhex(doc["proof"].removeprefix("0x"))
    return _decoded(raw, tuple(doc["instances"][0]), setup.settings, setup.input_mode)


def verify_proof(proof: Proof, settings: bytes, vk: bytes, verifier: ZkVerifier) -> None:
    """Check `proof` against a circuit's settings and vk with the validators' verifier; ZkProofError if not."""
    ok, reason = verifier.verify(settings, vk, {"instances": [list(proof.instances)], "proof": list(proof.proof)})
    if not ok:
        raise ZkProofError(f"the proof does not verify against this vk: {reason}")


def input_hash_of(x: npt.ArrayLike, input_scale: int) -> str:
    """The Poseidon hash a hashed-input circuit exposes for `x`: the client recomputes it to bind a proof to its input.

    ezkl quantizes each value to a field element at the circuit's input scale, then hashes them.
    """
    import ezkl

    arr = np.asarray(x, dtype=np.float32).reshape(-1)
    felts = [ezkl.float_to_felt(float(v), input_scale, ezkl.PyInputType.F32) for v in arr]
    digest = ezkl.poseidon_hash(felts)[0]
    return "0x" + bytes.fromhex(digest.removeprefix("0x"))[::-1].hex()
