"""The federation module's chain records: tasks (with their aggregation policy), rounds, contributions, versions.

Light on purpose (typing only): the aggregator, evaluator, clients and light client read these
shapes from query answers, and import them from here.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from fedledger.abci_app.modules.lifecycle.records import DecisionSummary
from fedledger.abci_app.modules.secagg.records import SecaggState

__all__ = [
    "AdaptiveClip",
    "ArtifactRef",
    "AggregationPolicy",
    "CentralNoise",
    "Compression",
    "ContributionRecord",
    "DroppedEntry",
    "PayloadRef",
    "RoundRecord",
    "RoundStatus",
    "ScreenPolicy",
    "SecurePolicy",
    "TaskRecord",
    "AncestorEntry",
    "Lineage",
    "NormProofPolicy",
    "VersionRecord",
    "VersionStatus",
]


class PayloadRef(TypedDict):
    """Where a payload lives off chain and how to check it."""

    cid: str
    sha256: str
    size: int


class SecurePolicy(TypedDict):
    """aggregation.secure: SecAgg+ settings (decimals are strings: no floats on chain)."""

    group_size: int
    clip: str
    threshold_pct: int
    stage_blocks: int
    noise_multiplier: str | None
    sparse_ppm: int | None
    noise_quorum_pct: int


class ScreenPolicy(TypedDict):
    """aggregation.screen: the bounds every screened input's claims must meet."""

    min_cosine_ppm: int
    max_norm: str


class Compression(TypedDict):
    """aggregation.compression: quant8, or topk with its fraction."""

    method: Literal["quant8", "topk"]
    fraction_ppm: NotRequired[int]


class AdaptiveClip(TypedDict):
    """central_noise.adaptive: quantile-tracking clip (Andrew et al. 2021)."""

    target_quantile: str
    learning_rate: str
    bit_noise: str


class CentralNoise(TypedDict):
    """aggregation.central_noise: the aggregator's clip and noise on a plaintext fedavg sum."""

    noise_multiplier: str
    clip: str  # moved by propose_version's next_clip under adaptive clipping
    adaptive: NotRequired[AdaptiveClip]


class AggregationPolicy(TypedDict):
    """A task's aggregation policy (federation/aggregation.py validates it)."""

    rule: str
    byzantine: int
    secure: SecurePolicy | None
    screen: NotRequired[ScreenPolicy]
    compression: NotRequired[Compression]
    central_noise: NotRequired[CentralNoise]


class NormProofPolicy(TypedDict):
    """A task's zkDPS requirement: each commit carries an ezkl proof that ||update||_2 <= clip (dim entries)."""

    clip: str
    dim: int


class TaskRecord(TypedDict):
    """`fl/task/<task>`."""

    task_id: str
    owner: str
    aggregator: str
    model_spec: str
    round_size: int
    min_contributions: int
    deadline_blocks: int
    created_height: int
    current_round: int
    latest_version: int
    aggregation: NotRequired[AggregationPolicy]  # absent on the oldest task records: plain FedAvg
    norm_proof: NotRequired[NormProofPolicy]  # zkDPS: every commit proves its update within this L2 bound


RoundStatus = Literal["open", "closed", "failed", "aggregated"]


class RoundRecord(TypedDict):
    """`fl/round/<task>/<round>`: open -> closed | failed -> aggregated | failed."""

    task_id: str
    round: int
    status: RoundStatus
    opened_height: int
    deadline_height: int
    base_version: int
    contributions: int  # counts the keys under fl/contrib/<task>/<round>/ (the listing rule relies on it)
    total_examples: int
    closed_height: int | None
    version: int | None
    selected: list[str]
    failure: NotRequired[str]
    reference: NotRequired[PayloadRef]
    secagg: NotRequired[SecaggState]


class ContributionRecord(TypedDict):
    """`fl/contrib/<task>/<round>/<signer>`: a trainer's signed commitment."""

    id: str
    task_id: str
    round: int
    participant: str
    base_version: int
    cid: str
    sha256: str
    size: int
    num_examples: int
    height: int
    did: str
    organization: str
    # The DP mechanism as the tx declared it (free-form JSON: the accountant parses it when debiting).
    dp: dict[str, Any] | None
    epsilon_after_micro: int
    # zkDPS: "verified" when the chain verified a clip-bound proof for this commit, and the proof's
    # public Poseidon hash of the (quantized, unmasked) update; both absent on tasks without norm proofs.
    norm_proof: NotRequired[Literal["verified"]]
    update_hash: NotRequired[str]


class DroppedEntry(TypedDict):
    """A contribution the aggregator left out of a version, and why."""

    participant: str
    reason: str


VersionStatus = Literal["initial", "proposed", "promoted", "quarantined", "rolled_back"]


class ArtifactRef(TypedDict):
    """A version's portable artifact in the content store: its format, CID, sha256 and size."""

    format: str
    cid: str
    sha256: str
    size: int


class VersionRecord(TypedDict):
    """`fl/version/<task>/<version>`; the lifecycle module decides its status."""

    task_id: str
    version: int
    round: int
    parent: int | None
    cid: str
    sha256: str
    size: int
    contributors: list[str]
    proposer: str
    height: int
    total_examples: int
    status: VersionStatus
    dropped: NotRequired[list[DroppedEntry]]
    decided_height: NotRequired[int]
    decision: NotRequired[DecisionSummary]
    rolled_back_height: NotRequired[int]
    artifact: NotRequired[ArtifactRef]  # the portable ONNX export, when the proposer made one


class AncestorEntry(TypedDict):
    """One ancestor of a version in a lineage answer."""

    version: int
    round: int
    cid: str
    sha256: str
    height: int
    status: VersionStatus


class Lineage(TypedDict):
    """The `/lineage/TASK/VERSION` answer: the version, the exact contributions it included, its ancestry."""

    version: VersionRecord
    contributions: list[ContributionRecord]
    ancestors: list[AncestorEntry]
