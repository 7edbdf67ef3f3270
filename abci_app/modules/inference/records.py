"""The inference module's chain records: nodes, task policies, params, receipt batches and slashings."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from fedledger.abci_app.modules.attestation.records import TeeRequirement

__all__ = ["BatchRecord", "BatchRequest", "EncryptedRecord", "InferenceMeta", "InferenceParams", "NodeRecord",
           "PolicyRecord",
           "RequestRecord", "SlashRecord", "Tier"]

Tier = Literal["general", "critical"]


class InferenceMeta(TypedDict):
    """`inf/meta`: how many nodes, batches and slashings are recorded."""

    nodes: int
    batches: int
    slashes: int


class InferenceParams(TypedDict):
    """`inf/params`: see params.py."""

    dissent_penalty: int
    fraud_penalty: int
    max_dissents: int
    dissent_window: int


class NodeRecord(TypedDict):
    """`inf/node/<seq>`: an admitted inference node, where it serves, and how its answers have fared."""

    seq: int
    key: str  # hex Ed25519 signing key
    did: str
    endpoint: str  # base URL of its Open Inference Protocol v2 REST API
    tasks: list[str]  # the tasks it serves there, sorted
    registered_height: int
    status: Literal["active", "suspended"]
    agreed: int  # answers in the majority
    dissented: int  # answers outvoted
    recent_dissents: list[int]  # heights of the dissents inside the current window, ascending
    suspended_height: int | None
    suspended_reason: str | None


class PolicyRecord(TypedDict):
    """`inf/policy/<task>`: which tier the task's inference requires, and how many nodes answer each request."""

    task_id: str
    tier: Tier
    k: int
    set_height: int
    # critical only (absent for general, so general records keep their bytes): the accepted guarantees, sorted
    guarantees: NotRequired[list[str]]
    # absent unless set: inference nodes registering for the task need a valid SEV-SNP attestation meeting it
    require_tee: NotRequired[TeeRequirement]


class BatchRequest(TypedDict):
    """One tallied request inside a batch."""

    request: str  # sha256 over the request's sorted receipt hashes
    request_id: str
    version: int
    segment: str
    input_hash: str
    outcome: str  # unanimous | majority | split
    majority: list[str]  # node DIDs, sorted
    dissenters: list[str]
    nodes: list[str]  # every answering node's DID, sorted
    excluded: list[str]  # nodes suspended by the time of the report: their answers are not counted


class BatchRecord(TypedDict):
    """`inf/batch/<seq>`: a reported batch of receipts, the Merkle root over them, and its tallies."""

    seq: int
    task_id: str
    reporter: str  # the reporting member's DID
    height: int
    root: str  # Merkle root (sdk-free: see merkle.py) over every receipt hash, in request then node order
    receipts: int
    cid: str | None  # the full receipts and outputs in the content store, when the reporter put them there
    requests: list[BatchRequest]


class RequestRecord(TypedDict):
    """`inf/req/<request hash>`: where a tallied request is, so a replay is refused and a query finds it."""

    batch: int
    index: int


class SlashRecord(TypedDict):
    """`inf/slash/<seq>`: one penalty a node took, and why."""

    seq: int
    node: str  # DID
    reason: Literal["dissent", "fraud"]
    height: int
    penalty: int  # reputation micro-units
    batch: int | None
    request: str | None
    evidence: list[str]  # the receipt hashes it rests on
    suspended: bool  # whether this penalty suspended the node


class EncryptedRecord(TypedDict):
    """`inf/ckks/<request_id>`: a critical request answered over CKKS ciphertexts, stage by stage."""

    request_id: str
    task_id: str
    version: int
    guarantee: Literal["ckks"]
    stages: int
    nodes: list[str]  # the node DID of each stage, stage 0 first (distinct: none held the whole model)
    eval_context_sha256: str
    input_sha256: str  # the client's ciphertext
    output_sha256: str  # the last stage's ciphertext, which only the client can decrypt
    receipts: list[str]  # sha256 of each signed stage receipt
    reporter: str
    height: int
