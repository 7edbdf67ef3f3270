"""Message bodies of the federation tx types and their stateless validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.privacy.budget import parse_policy

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MAX_ROUND_SIZE",
    "ClosedRound",
    "CommitContribution",
    "CreateTask",
    "FailRound",
    "ModelRef",
    "OpenRound",
    "ProposeVersion",
    "PARSERS",
    "contribution_id",
]

MAX_ROUND_SIZE = 1000
MAX_PAYLOAD_BYTES = 1 << 30
MAX_DEADLINE_BLOCKS = 1_000_000
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SPEC_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# A CIDv1 in base32 (multibase prefix 'b'); the chain checks the spelling only, the store the bytes.
_CID_RE = re.compile(r"^b[a-z2-7]{20,120}$")


def contribution_id(task_id: str, rnd: int, signer: str) -> str:
    """The public identifier of a contribution: task/round/signer."""
    return f"{task_id}/{rnd}/{signer}"


def _fields(body: dict[str, Any], names: set[str]) -> None:
    if set(body) != names:
        missing, extra = sorted(names - set(body)), sorted(set(body) - names)
        raise TxError(Code.INVALID_BODY, f"body fields wrong: missing {missing}, unexpected {extra}")


def _str(body: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not pattern.match(value):
        raise TxError(Code.INVALID_BODY, f"{name} must be {what}")
    return value


def _int(body: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = body[name]
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise TxError(Code.INVALID_BODY, f"{name} must be an integer in [{lo}, {hi}]")
    return value


@dataclass(frozen=True)
class ModelRef:
    """Where a model payload lives and how to check it: CID, sha256 and byte size."""

    cid: str
    sha256: str
    size: int

    @staticmethod
    def parse(body: dict[str, Any]) -> ModelRef:
        """Validate the cid/sha256/size fields of a body."""
        return ModelRef(
            cid=_str(body, "cid", _CID_RE, "a CIDv1 in base32 (starting with 'b')"),
            sha256=_str(body, "sha256", _HEX64, "64 lower-case hex digits"),
            size=_int(body, "size", 1, MAX_PAYLOAD_BYTES),
        )

    def to_json(self) -> dict[str, Any]:
        """Record form."""
        return {"cid": self.cid, "sha256": self.sha256, "size": self.size}


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
    privacy: dict[str, Any]  # validated policy record (privacy module)

    @staticmethod
    def parse(body: dict[str, Any]) -> CreateTask:
        """Validate a create_task body."""
        _fields(body, {"task_id", "model_spec", "round_size", "min_contributions", "deadline_blocks",
                       "aggregator", "initial_model", "privacy"})
        round_size = _int(body, "round_size", 1, MAX_ROUND_SIZE)
        initial = body["initial_model"]
        if not isinstance(initial, dict):
            raise TxError(Code.INVALID_BODY, "initial_model must be an object with cid, sha256, size")
        _fields(initial, {"cid", "sha256", "size"})
        return CreateTask(
            task_id=_str(body, "task_id", _ID_RE, "1-64 chars of a-z, 0-9, '-' or '_'"),
            model_spec=_str(body, "model_spec", _SPEC_RE, "a model spec name such as 'mlp-digits'"),
            round_size=round_size,
            min_contributions=_int(body, "min_contributions", 1, round_size),
            deadline_blocks=_int(body, "deadline_blocks", 1, MAX_DEADLINE_BLOCKS),
            aggregator=_str(body, "aggregator", _HEX64, "the aggregator's public key (64 hex digits)"),
            initial_model=ModelRef.parse(initial),
            privacy=parse_policy(body["privacy"]),
        )


@dataclass(frozen=True)
class OpenRound:
    """Open the next round of a task."""

    task_id: str
    round: int

    @staticmethod
    def parse(body: dict[str, Any]) -> OpenRound:
        """Validate an open_round body."""
        _fields(body, {"task_id", "round"})
        return OpenRound(task_id=_str(body, "task_id", _ID_RE, "a task id"), round=_int(body, "round", 1, 2**40))


@dataclass(frozen=True)
class ClosedRound:
    """Close a round at its deadline or when it is full."""

    task_id: str
    round: int

    @staticmethod
    def parse(body: dict[str, Any]) -> ClosedRound:
        """Validate a close_round body."""
        _fields(body, {"task_id", "round"})
        return ClosedRound(task_id=_str(body, "task_id", _ID_RE, "a task id"), round=_int(body, "round", 1, 2**40))


@dataclass(frozen=True)
class CommitContribution:
    """A participant's signed commitment to an update stored off chain."""

    task_id: str
    round: int
    base_version: int
    payload: ModelRef
    num_examples: int
    dp: dict[str, Any]  # the declared DP mechanism, parsed by the accountant when debited

    @staticmethod
    def parse(body: dict[str, Any]) -> CommitContribution:
        """Validate a commit_contribution body."""
        _fields(body, {"task_id", "round", "base_version", "cid", "sha256", "size", "num_examples", "dp"})
        if not isinstance(body["dp"], dict):
            raise TxError(Code.INVALID_BODY, "dp must declare the mechanism: noise_multiplier, sample_rate, steps")
        return CommitContribution(
            task_id=_str(body, "task_id", _ID_RE, "a task id"),
            round=_int(body, "round", 1, 2**40),
            base_version=_int(body, "base_version", 0, 2**40),
            payload=ModelRef.parse(body),
            num_examples=_int(body, "num_examples", 1, 2**40),
            dp=body["dp"],
        )


@dataclass(frozen=True)
class ProposeVersion:
    """The aggregator's proposal of the next model version with the exact contributions it used."""

    task_id: str
    round: int
    payload: ModelRef
    contributors: tuple[str, ...]

    @staticmethod
    def parse(body: dict[str, Any]) -> ProposeVersion:
        """Validate a propose_version body; contributors must be sorted and unique."""
        _fields(body, {"task_id", "round", "cid", "sha256", "size", "contributors"})
        contributors = body["contributors"]
        if (not isinstance(contributors, list) or not 1 <= len(contributors) <= MAX_ROUND_SIZE
                or not all(isinstance(c, str) and _HEX64.match(c) for c in contributors)):
            raise TxError(Code.INVALID_BODY,
                          f"contributors must be a list of 1-{MAX_ROUND_SIZE} participant keys (hex)")
        if contributors != sorted(set(contributors)):
            raise TxError(Code.INVALID_BODY, "contributors must be sorted and without duplicates")
        return ProposeVersion(
            task_id=_str(body, "task_id", _ID_RE, "a task id"),
            round=_int(body, "round", 1, 2**40),
            payload=ModelRef.parse(body),
            contributors=tuple(contributors),
        )


@dataclass(frozen=True)
class FailRound:
    """The aggregator gives up on a closed round whose payloads could not be used, so the task can go on."""

    task_id: str
    round: int
    reason: str

    @staticmethod
    def parse(body: dict[str, Any]) -> FailRound:
        """Validate a fail_round body."""
        _fields(body, {"task_id", "round", "reason"})
        return FailRound(task_id=_str(body, "task_id", _ID_RE, "a task id"), round=_int(body, "round", 1, 2**40),
                         reason=_str(body, "reason", re.compile(r"^[\x20-\x7e]{1,200}$"), "1-200 printable chars"))


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "create_task": CreateTask.parse,
    "open_round": OpenRound.parse,
    "commit_contribution": CommitContribution.parse,
    "close_round": ClosedRound.parse,
    "propose_version": ProposeVersion.parse,
    "fail_round": FailRound.parse,
}
