"""A proven inference: ask a node to prove it, verify the proof locally against the vk the chain holds, file it.

The flow (issue #16, critical tier): POST the input to the node's prove route, poll the job, fetch
the version's circuit from the chain, check the node's proof with the validators' own verifier,
check that the proof's input hash is the hash of *our* input (hashed mode), post the node-signed
submit_inference_proof tx, and return the outputs with the chain's record of the verdict.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt

from fedledger.abci_app.errors import UnavailableError, VerificationError
from fedledger.abci_app.modules.zk.keeper import circuit_bytes
from fedledger.abci_app.modules.zk.verifier import ZkVerifier
from fedledger.sdk.chainview import ChainView
from fedledger.sdk.zk.errors import ZkProofError
from fedledger.sdk.zk.proof import Proof, input_hash_of, verify_proof

__all__ = ["ProofJobError", "ProverUnavailableError", "TxSender", "ZkInferenceClient", "ZkInferenceResult"]


class ProverUnavailableError(UnavailableError):
    """The node's prover did not answer, refused the job, or did not finish it in time."""

    error_code = "ZK_PROVER_UNAVAILABLE"


class ProofJobError(VerificationError):
    """The node's proof is unusable: the job failed, the proof does not verify, or it proves another input."""

    error_code = "ZK_PROOF_JOB"


class TxSender(Protocol):
    """What posts a tx and waits for its block (sdk.submit.Submitter is one)."""

    def send(self, tx_type: str, body: dict[str, Any], timeout: float = 30.0) -> Any:
        """Sign, broadcast and wait for the block; raise if the chain refused the tx."""


@dataclass(frozen=True)
class ZkInferenceResult:
    """The proven outputs, the proof, and the chain's record of its verdict (None when not posted)."""

    outputs: list[float]
    proof: Proof
    record: dict[str, Any] | None


class ZkInferenceClient:
    """Requests proven inferences from one node for one task, verifying and filing each proof."""

    def __init__(self, http: httpx.Client, view: ChainView, verifier: ZkVerifier, task_id: str, model_name: str,
                 sender: TxSender | None = None) -> None:
        """`http` has the node's base URL; `sender` posts the proof (None: verify only, post nothing)."""
        self.http, self.view, self.verifier, self.sender = http, view, verifier, sender
        self.task_id, self.model_name = task_id, model_name

    def request(self, version: int, data: npt.ArrayLike, request_id: str, input_mode: str = "hashed") -> str:
        """Queue the proving job at the node; returns its job id."""
        flat = [float(v) for v in np.asarray(data, dtype=np.float32).reshape(-1)]
        try:
            r = self.http.post(f"/v2/models/{self.model_name}/versions/{version}/prove",
                               json={"id": request_id, "input_mode": input_mode, "data": flat})
        except httpx.HTTPError as exc:
            raise ProverUnavailableError(f"the node's prover did not answer: {exc}") from None
        if r.status_code != 202:
            raise ProverUnavailableError(f"the node refused the proving job ({r.status_code}): {_message(r)}")
        return str(r.json()["job_id"])

    def wait(self, job_id: str, timeout_s: float = 300.0, poll_s: float = 0.5) -> dict[str, Any]:
        """Poll the job until it is done (its JSON) or failed (ProofJobError); ProverUnavailableError on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                r = self.http.get(f"/v2/prove/{job_id}")
            except httpx.HTTPError as exc:
                raise ProverUnavailableError(f"the node's prover did not answer: {exc}") from None
            if r.status_code != 200:
                raise ProverUnavailableError(f"polling job {job_id[:16]} failed ({r.status_code}): {_message(r)}")
            doc: dict[str, Any] = r.json()
            if doc.get("state") == "done":
                return doc
            if doc.get("state") == "failed":
                raise ProofJobError(f"the node could not prove the inference: {doc.get('reason')}")
            if time.monotonic() > deadline:
                raise ProverUnavailableError(f"job {job_id[:16]} not done within {timeout_s:.0f}s")
            time.sleep(poll_s)

    def check(self, doc: dict[str, Any], version: int, data: npt.ArrayLike, request_id: str,
              input_mode: str) -> Proof:
        """Verify a finished job's proof against the chain's vk, and that it proves our input and request."""
        circuit = self.view.get(f"/zk-circuit/{self.task_id}/{version}/{input_mode}")
        settings, vk = circuit_bytes(circuit)
        try:
            proof = Proof.from_json(doc["proof"], settings, input_mode)
            verify_proof(proof, settings, vk, self.verifier)
        except (ZkProofError, KeyError) as exc:
            raise ProofJobError(f"the node's proof does not verify against the chain's vk: {exc}") from None
        if input_mode == "hashed":
            scale = int(json.loads(settings)["run_args"]["input_scale"])
            if proof.input_hash != input_hash_of(data, scale):
                raise ProofJobError("the node proved an inference on another input (its input hash is not ours)")
        sub = doc.get("submission") or {}
        if (sub.get("task_id"), sub.get("version"), sub.get("request_id"), sub.get("input_mode"),
                sub.get("instances")) != (self.task_id, version, request_id, input_mode, list(proof.instances)):
            raise ProofJobError("the node's signed submission does not match the proof it returned")
        return proof

    def infer(self, version: int, data: npt.ArrayLike, request_id: str, input_mode: str = "hashed",
              timeout_s: float = 300.0) -> ZkInferenceResult:
        """Request, wait, verify locally, post (if a sender is set) and return outputs + the chain record."""
        doc = self.wait(self.request(version, data, request_id, input_mode), timeout_s)
        proof = self.check(doc, version, data, request_id, input_mode)
        record: dict[str, Any] | None = None
        if self.sender is not None:
            self.sender.send("submit_inference_proof", doc["submission"])
            record = self.view.get(f"/zk-proof/{self.task_id}/{request_id}")
            if record["verdict"] != "valid":  # the local check passed, so this would be a verifier disagreement
                raise ProofJobError(f"the chain recorded the proof as {record['verdict']}: {record.get('reason')}")
        return ZkInferenceResult(outputs=proof.output_values(), proof=proof, record=record)


def _message(r: httpx.Response) -> str:
    try:
        return str(r.json().get("error", r.text))[:300]
    except ValueError:
        return r.text[:300]
