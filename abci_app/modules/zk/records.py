"""Typed records of the zk module: params (the pinned SRS), registered circuits and proof verdicts."""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = ["CircuitRecord", "InputMode", "ProofRecord", "Verdict", "ZkMeta", "ZkParams"]

InputMode = Literal["hashed", "private"]
Verdict = Literal["valid", "invalid"]


class ZkParams(TypedDict):
    """`zk/params`: the one KZG SRS every validator verifies with, pinned by its sha256 at genesis."""

    srs_sha256: str  # "" when the chain pinned none: then no circuit can be registered
    srs_logrows: int  # the SRS's size (2^logrows points); a circuit needs exactly this many rows (see verifier.py)


class ZkMeta(TypedDict):
    """`zk/meta`: counters."""

    circuits: int
    proofs: int
    invalid: int


class CircuitRecord(TypedDict):
    """`zk/circuit/<task>/<version>/<mode>`: one version's ezkl circuit, stored whole so validators verify alone.

    The vk is the commitment to the model's parameters: the circuit fixes them ("fixed" param
    visibility), so a proof that verifies against this vk was produced by exactly these weights.
    """

    task_id: str
    version: int
    input_mode: InputMode
    settings_zb64: str  # base64 of the zlib-compressed canonical settings JSON (sorted keys, no timestamp)
    settings_sha256: str
    vk_zb64: str  # base64 of the zlib-compressed vk (a vk compresses ~35x, settings ~70x: both fit a 16 KiB tx)
    vk_sha256: str  # sha256 of the uncompressed vk: the model-parameter commitment
    artifact_sha256: str | None  # the version's ONNX artifact, when its proposer exported one
    logrows: int
    outputs: int  # how many output values a proof's instances carry
    registrant: str  # signer key
    height: int


class ProofRecord(TypedDict):
    """`zk/proof/<task>/<request_id>`: the chain's verdict on one node's proof of one inference."""

    request_id: str
    task_id: str
    version: int
    input_mode: InputMode
    node: str  # DID of the node that signed the proof
    submitter: str  # signer key of the tx
    proof_sha256: str
    verdict: Verdict
    reason: str | None  # why an invalid proof failed
    input_hash: str | None  # the Poseidon hash of the input (hashed mode), 0x-hex field element
    outputs: list[int] | None  # the outputs as signed fixed-point ints (value = int / 2^output_scale)
    output_scale: int
    guarantee: str  # "zk" for a valid proof, "none" otherwise
    height: int
