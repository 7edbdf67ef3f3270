"""The public plan of one secure round, derived from chain records alone: groups, graphs, quantizers.

Every party (each client, the aggregator, and anyone re-checking a version) calls `plan_round`
with the same task and round records and gets the same plan, because everything in it comes
from the round seed and the sorted list of selected participants that the chain fixed when the
round opened. Participant i of the plan is `round["selected"][i]`.

The board (`/secagg/T/R`) and the posted payloads become the library's message objects here, so
that the client driver, the aggregator and the verifier read them one way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.sdk.compression.sparse_mask import gather, scatter, shared_coordinates
from fedledger.sdk.secagg import (
    AdvertiseMessage,
    RoundSetup,
    default_degree,
    group_context,
    partition,
    setup_round,
)
from fedledger.sdk.secagg.quantize import Quantizer

__all__ = ["FIELD_BITS", "GroupPlan", "RoundPlan", "advertisements", "plan_round"]

# Sums live in Z_2^32: the quantizer gives each value 32 − ⌈log2 g⌉ bits so a group's sum never wraps.
FIELD_BITS = 32


@dataclass(frozen=True)
class GroupPlan:
    """One SecAgg group: its member indices, protocol setup and quantizer."""

    number: int
    members: tuple[int, ...]
    setup: RoundSetup
    quantizer: Quantizer


@dataclass(frozen=True, eq=False)
class RoundPlan:
    """The groups of a secure round, the participant ↔ index mapping, and the shared coordinates."""

    participants: tuple[str, ...]  # signing keys, index order
    groups: tuple[GroupPlan, ...]
    model_dim: int
    coords: npt.NDArray[np.uint32] | None = None  # sparsified rounds: the coordinates every client sends

    def to_wire(self, vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The part of a flat model-sized vector that enters SecAgg (all of it, or the shared coordinates)."""
        return vector if self.coords is None else gather(vector, self.coords)

    def from_wire(self, vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """A model-sized vector from an aggregated SecAgg vector (zeros off the shared coordinates)."""
        return vector if self.coords is None else scatter(vector, self.coords, self.model_dim)

    def index_of(self, participant: str) -> int:
        """The plan index of a participant's key; ValueError if it was not selected."""
        return self.participants.index(participant)

    def group_of(self, index: int) -> GroupPlan:
        """The group holding index."""
        for group in self.groups:
            if index in group.members:
                return group
        raise ValueError(f"index {index} is in no group of this round")

    def indices(self, keys: Sequence[str]) -> list[int]:
        """The plan indices of the given participant keys (unknown keys are skipped)."""
        pos = {k: i for i, k in enumerate(self.participants)}
        return sorted(pos[k] for k in keys if k in pos)


def _threshold(members: int, pct: int) -> int:
    degree = default_degree(members)
    return max(1, math.ceil(degree * pct / 100))


def plan_round(task: Mapping[str, Any], rnd: Mapping[str, Any], dim: int) -> RoundPlan:
    """The plan of a secure round of `task` for models of `dim` parameters (SecAgg runs on k ≤ dim of them)."""
    policy = task["aggregation"]["secure"]
    seed = bytes.fromhex(rnd["secagg"]["seed"])
    participants = tuple(rnd["selected"])
    clip = float(policy["clip"])
    coords = None
    if policy.get("sparse_ppm") is not None:
        k = max(1, math.ceil(dim * policy["sparse_ppm"] / 1_000_000))
        coords = shared_coordinates(seed, dim, k)
    model_dim, dim = dim, (dim if coords is None else int(coords.shape[0]))
    groups = []
    for number, members in enumerate(partition(list(range(len(participants))), seed, policy["group_size"])):
        quantizer = Quantizer.for_field(clip, len(members), FIELD_BITS)
        setup = setup_round(group_context(seed, number), members, dim, quantizer.field_bits,
                            threshold=_threshold(len(members), policy["threshold_pct"]))
        groups.append(GroupPlan(number, members, setup, quantizer))
    return RoundPlan(participants, tuple(groups), model_dim, coords)


def advertisements(plan: RoundPlan, group: GroupPlan, keys_board: Mapping[str, Any],
                   allowed: Callable[[str], bool] = lambda _: True) -> list[AdvertiseMessage]:
    """The group's roster as the library's messages, rebuilt from the chain's secagg_keys records."""
    out = []
    for participant, rec in sorted(keys_board.items()):
        if participant not in plan.participants or not allowed(participant):
            continue
        index = plan.index_of(participant)
        if index in group.members:
            out.append(AdvertiseMessage(group.setup.context, index, bytes.fromhex(rec["c_pk"]),
                                        bytes.fromhex(rec["s_pk"])))
    return out
