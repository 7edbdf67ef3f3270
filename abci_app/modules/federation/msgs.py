"""Message bodies of the federation tx types and their stateless validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.federation.aggregation import parse_aggregation, positive_decimal
from fedledger.abci_app.modules.federation.norm_proof import (
    NormCircuitParam,
    NormProofBody,
    parse_norm_circuit,
    parse_norm_proof,
)
from fedledger.abci_app.modules.federation.payload import (
    MAX_DEADLINE_BLOCKS,
    MAX_PAYLOAD_BYTES,
    MAX_ROUND_SIZE,
    ModelRef,
)
from fedledger.abci_app.modules.federation.records import AggregationPolicy
from fedledger.abci_app.modules.fields import HEX64, ID_RE, int_field, require_fields, str_field
from fedledger.abci_app.modules.lifecycle.keeper import parse_params
from fedledger.abci_app.modules.privacy.keeper import parse_policy
from fedledger.abci_app.modules.privacy.records import PrivacyPolicy

__all__ = [
    "MAX_DEADLINE_BLOCKS",
    "MAX_PAYLOAD_BYTES",
    "MAX_ROUND_SIZE",
    "ClosedRound",
    "CommitContribution",
    "CreateTask",
    "DeclareAvailability",
    "FailRound",
    "ModelRef",
    "OpenRound",
    "ProposeVersion",
    "PARSERS",
    "contribution_id",
]

_SPEC_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_REASON_RE = re.compile(r"^[\x20-\x7e]{1,200}$")


def _task_round(body: dict[str, Any], extra: tuple[str, ...] = ()) -> tuple[str, int]:
    """The (task_id, round) of a body that names one round of one task."""
    require_fields(body, {"task_id", "round", *extra})
    return str_field(body, "task_id", ID_RE, "a task id"), int_field(body, "round", 1, 2**40)


def contribution_id(task_id: str, number: int, signer: str) -> str:
    """The public identifier of a contribution: task/round/signer."""
    return f"{task_id}/{number}/{signer}"


@dataclass(frozen=True)
class CreateTask:
    """Create a federated task with its model spec, round sizes, deadline and initial model."""

    task_id: str
    model_spec: str
    round_size: int
    min_contributions: int
    deadline_blocks: int
    aggregator: str
    initial_model: ModelRef
    privacy: PrivacyPolicy | None  # validated policy record (privacy module); None: no privacy budget
    lifecycle: dict[str, int] | None = None  # evaluation quorum and thresholds (lifecycle module); None: defaults
    aggregation: AggregationPolicy | None = None  # robust rule and SecAgg settings (aggregation.py); None: FedAvg
    norm_proof: NormCircuitParam | None = None  # zkDPS: commits must prove their clip bound (norm_proof.py)

    @staticmethod
    def parse(body: dict[str, Any]) -> CreateTask:
        """Validate a create_task body."""
        require_fields({k: v for k, v in body.items() if k not in ("lifecycle", "aggregation", "norm_proof")},
                {"task_id", "model_spec", "round_size", "min_contributions", "deadline_blocks", "aggregator",
                 "initial_model", "privacy"})
        round_size = int_field(body, "round_size", 1, MAX_ROUND_SIZE)
        initial = body["initial_model"]
        if not isinstance(initial, dict):
            raise TxError(Code.INVALID_BODY, "initial_model must be an object with cid, sha256, size")
        require_fields(initial, {"cid", "sha256", "size"})
        return CreateTask(
            task_id=str_field(body, "task_id", ID_RE, "1-64 chars of a-z, 0-9, '-' or '_'"),
            model_spec=str_field(body, "model_spec", _SPEC_RE, "a model spec name such as 'mlp-digits'"),
            round_size=round_size,
            min_contributions=int_field(body, "min_contributions", 1, round_size),
            deadline_blocks=int_field(body, "deadline_blocks", 1, MAX_DEADLINE_BLOCKS),
            aggregator=str_field(body, "aggregator", HEX64, "the aggregator's public key (64 hex digits)"),
            initial_model=ModelRef.parse(initial),
            # null: a consortium that trains without DP; its commits then declare `dp: null`.
            privacy=parse_policy(body["privacy"]) if body["privacy"] is not None else None,
            lifecycle=parse_params(body["lifecycle"]) if body.get("lifecycle") is not None else None,
            aggregation=parse_aggregation(body.get("aggregation"), round_size),
            norm_proof=parse_norm_circuit(body["norm_proof"]) if body.get("norm_proof") is not None else None,
        )


@dataclass(frozen=True)
class OpenRound:
    """Open the next round of a task, with the aggregator's reference direction when the task screens inputs."""

    task_id: str
    round: int
    reference: ModelRef | None = None  # the root update clients project onto (aggregation.screen)

    @staticmethod
    def parse(body: dict[str, Any]) -> OpenRound:
        """Validate an open_round body; `reference` is optional ({cid, sha256, size})."""
        require_fields(body, {"task_id", "round"}, {"reference"})
        task_id, rnd = _task_round({k: v for k, v in body.items() if k != "reference"})
        ref = body.get("reference")
        if ref is None:
            return OpenRound(task_id, rnd)
        if not isinstance(ref, dict):
            raise TxError(Code.INVALID_BODY, "reference must be an object with cid, sha256, size")
        require_fields(ref, {"cid", "sha256", "size"}, what="reference")
        return OpenRound(task_id, rnd, ModelRef.parse(ref))




@dataclass(frozen=True)
class ClosedRound:
    """Close a round at its deadline or when it is full."""

    task_id: str
    round: int

    @staticmethod
    def parse(body: dict[str, Any]) -> ClosedRound:
        """Validate a close_round body."""
        return ClosedRound(*_task_round(body))


@dataclass(frozen=True)
class CommitContribution:
    """A participant's signed commitment to an update stored off chain."""

    task_id: str
    round: int
    base_version: int
    payload: ModelRef
    num_examples: int
    dp: dict[str, Any] | None  # the declared DP mechanism (free-form JSON), parsed by the accountant when debited
    norm_proof: NormProofBody | None = None  # zkDPS: the clip-bound proof, when the task requires one

    @staticmethod
    def parse(body: dict[str, Any]) -> CommitContribution:
        """Validate a commit_contribution body (`norm_proof` optional: {proof, instances})."""
        require_fields(body, {"task_id", "round", "base_version", "cid", "sha256", "size", "num_examples", "dp"},
                       {"norm_proof"})
        if body["dp"] is not None and not isinstance(body["dp"], dict):
            raise TxError(Code.INVALID_BODY, "dp must declare the mechanism: noise_multiplier, sample_rate, steps "
                                             "(or be null on a task without a privacy budget)")
        return CommitContribution(
            task_id=str_field(body, "task_id", ID_RE, "a task id"),
            round=int_field(body, "round", 1, 2**40),
            base_version=int_field(body, "base_version", 0, 2**40),
            payload=ModelRef.parse(body),
            num_examples=int_field(body, "num_examples", 1, 2**40),
            dp=body["dp"],
            norm_proof=parse_norm_proof(body.get("norm_proof")),
        )


@dataclass(frozen=True)
class ProposeVersion:
    """The aggregator's proposal of the next model version with the exact contributions it used."""

    task_id: str
    round: int
    payload: ModelRef
    contributors: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...] = ()  # (participant, reason) the aggregator excluded, for reputation
    next_clip: str | None = None  # adaptive clipping: the clip norm of the task's next round
    # The version's portable artifact (ONNX built from the weights, sdk/inference/onnx_export.py),
    # signed with the proposal so inference nodes can check what they load against the chain.
    artifact: ModelRef | None = None

    @staticmethod
    def parse(body: dict[str, Any]) -> ProposeVersion:
        """Validate a propose_version body; contributors sorted and unique; optional `dropped` with reasons."""
        dropped_raw = body.get("dropped", [])
        require_fields({k: v for k, v in body.items() if k not in ("dropped", "next_clip", "artifact")},
                {"task_id", "round", "cid", "sha256", "size", "contributors"})
        contributors = body["contributors"]
        if (not isinstance(contributors, list) or not 1 <= len(contributors) <= MAX_ROUND_SIZE
                or not all(isinstance(c, str) and HEX64.match(c) for c in contributors)):
            raise TxError(Code.INVALID_BODY,
                          f"contributors must be a list of 1-{MAX_ROUND_SIZE} participant keys (hex)")
        if contributors != sorted(set(contributors)):
            raise TxError(Code.INVALID_BODY, "contributors must be sorted and without duplicates")
        dropped = _parse_dropped(dropped_raw, set(contributors))
        return ProposeVersion(
            task_id=str_field(body, "task_id", ID_RE, "a task id"),
            round=int_field(body, "round", 1, 2**40),
            payload=ModelRef.parse(body),
            contributors=tuple(contributors),
            dropped=dropped,
            next_clip=positive_decimal(body["next_clip"], "next_clip") if body.get("next_clip") is not None else None,
            artifact=_parse_artifact(body["artifact"]) if "artifact" in body else None,
        )


ARTIFACT_FORMATS = ("onnx",)


def _parse_artifact(raw: Any) -> ModelRef:
    """{format: "onnx", cid, sha256, size}: the version's exported model in the content store."""
    if not isinstance(raw, dict) or set(raw) != {"format", "cid", "sha256", "size"}:
        raise TxError(Code.INVALID_BODY, "artifact must be {format, cid, sha256, size}")
    if raw["format"] not in ARTIFACT_FORMATS:
        raise TxError(Code.INVALID_BODY, f"artifact format must be one of {list(ARTIFACT_FORMATS)}")
    return ModelRef.parse(raw)


DROP_REASONS = ("hash_mismatch", "robust_flagged")


def _parse_dropped(raw: Any, included: set[str]) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ROUND_SIZE:
        raise TxError(Code.INVALID_BODY, "dropped must be a list of {participant, reason}")
    out: list[tuple[str, str]] = []
    for item in raw:
        if (not isinstance(item, dict) or set(item) != {"participant", "reason"}
                or not isinstance(item["participant"], str) or not HEX64.match(item["participant"])
                or item["reason"] not in DROP_REASONS):
            raise TxError(Code.INVALID_BODY, f"each dropped entry is {{participant, reason}} with reason in "
                                             f"{list(DROP_REASONS)}")
        out.append((item["participant"], item["reason"]))
    whos = [w for w, _ in out]
    if whos != sorted(set(whos)) or set(whos) & included:
        raise TxError(Code.INVALID_BODY, "dropped participants must be sorted, unique and not among contributors")
    return tuple(out)


@dataclass(frozen=True)
class FailRound:
    """The aggregator gives up on a closed round whose payloads could not be used, so the task can go on."""

    task_id: str
    round: int
    reason: str

    @staticmethod
    def parse(body: dict[str, Any]) -> FailRound:
        """Validate a fail_round body."""
        task_id, rnd = _task_round(body, extra=("reason",))
        return FailRound(task_id, rnd, str_field(body, "reason", _REASON_RE, "1-200 printable chars"))


@dataclass(frozen=True)
class DeclareAvailability:
    """A trainer says whether it takes part in a task's next rounds (selection skips the unavailable)."""

    task_id: str
    available: bool

    @staticmethod
    def parse(body: dict[str, Any]) -> DeclareAvailability:
        """Validate a declare_availability body."""
        require_fields(body, {"task_id", "available"})
        if not isinstance(body["available"], bool):
            raise TxError(Code.INVALID_BODY, "available must be true or false")
        return DeclareAvailability(task_id=str_field(body, "task_id", ID_RE, "a task id"), available=body["available"])


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "create_task": CreateTask.parse,
    "open_round": OpenRound.parse,
    "commit_contribution": CommitContribution.parse,
    "close_round": ClosedRound.parse,
    "propose_version": ProposeVersion.parse,
    "fail_round": FailRound.parse,
    "declare_availability": DeclareAvailability.parse,
}
