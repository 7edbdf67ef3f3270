"""The aggregator's arithmetic for a secure round: survivors, per-group unmasking, robust rule across groups.

Everything here reads chain records and content-store payloads and computes; nothing is sent.
The aggregator node calls it to decide what to post, and `fedledger aggregator verify` calls the
same code to recompute a published version from the same records, so both always agree.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.modules.federation.records import ContributionRecord, RoundRecord, TaskRecord
from fedledger.ipfs import ContentStore, StoreError
from fedledger.node.aggregation.combine import combine_rows
from fedledger.node.compliance_check import norm_screen
from fedledger.sdk.secagg import (
    MaskedInputMessage,
    SecAggError,
    ShareKeysMessage,
    UnmaskMessage,
    reconstruct,
)
from fedledger.sdk.secure_plan import GroupPlan, RoundPlan, advertisements

__all__ = ["SecureOutcome", "check_masked_inputs", "combine_groups"]

log = logging.getLogger("fedledger.secure_aggregate")


def _fetch(store: ContentStore, ref: Mapping[str, Any]) -> bytes:
    data = store.get(ref["cid"], ref["sha256"])
    if len(data) != ref["size"]:
        raise StoreError(f"payload is {len(data)} bytes, its commitment says {ref['size']}")
    return data


def check_masked_inputs(store: ContentStore, plan: RoundPlan, contributions: list[ContributionRecord],
                        task: TaskRecord | None = None) -> tuple[list[str], dict[str, str]]:
    """Contributors whose masked input is fetchable, matches its commitment and fits its group's setup.

    Returns (survivors, unusable: participant -> why). A group left with fewer than two usable
    inputs is dropped whole: unmasking a one-member sum would reveal that member's input. Given the
    `task`, a norm-proof task's contributions without a chain-verified proof are unusable too
    (node/compliance_check.py says what the proof does and does not bind).
    """
    usable: list[str] = []
    unusable: dict[str, str] = norm_screen(task, contributions) if task is not None else {}
    for c in contributions:
        who = c["participant"]
        if who in unusable:
            continue
        try:
            group = plan.group_of(plan.index_of(who))
            msg = MaskedInputMessage.from_bytes(_fetch(store, c))
            setup = group.setup
            if msg.dim != setup.dim or msg.field_bits != setup.field_bits or msg.sender != plan.index_of(who):
                raise SecAggError("masked input does not fit the round's setup")
        except (StoreError, SecAggError, ValueError) as exc:
            unusable[who] = str(exc)
            continue
        usable.append(who)
    for group in plan.groups:
        members = [w for w in usable if plan.index_of(w) in group.members]
        if len(members) == 1:
            usable.remove(members[0])
            unusable[members[0]] = "the only usable input of its group; unmasking it alone would reveal it"
    return sorted(usable), unusable


@dataclass
class SecureOutcome:
    """The aggregated delta of a secure round and who it includes, flags or leaves out."""

    vector: npt.NDArray[np.float32] | None
    contributors: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)  # members of groups the robust rule rejected
    failed_groups: dict[int, str] = field(default_factory=dict)


def _group_sum(store: ContentStore, plan: RoundPlan, group: GroupPlan, board: Mapping[str, Any],
               sa: Mapping[str, Any], contributions: Mapping[str, Mapping[str, Any]]) -> tuple[Any, int]:
    """Unmask one group: returns (its exact quantized sum, number of inputs)."""
    def mine(who: str) -> bool:
        return who in plan.participants and plan.index_of(who) in group.members

    roster = advertisements(plan, group, board["keys"], lambda w: w in sa["roster"])
    shares = [ShareKeysMessage.from_bytes(_fetch(store, board["shares"][w])) for w in sa["sharers"]
              if mine(w) and w in board["shares"]]
    masked = [MaskedInputMessage.from_bytes(_fetch(store, contributions[w])) for w in sa["survivors"] if mine(w)]
    unmask = []
    for w in sa["survivors"]:
        if mine(w) and w in board["unmask"]:
            try:
                unmask.append(UnmaskMessage.from_bytes(_fetch(store, board["unmask"][w])))
            except (StoreError, SecAggError) as exc:
                log.warning("revealed shares of %s… unusable: %s", w[:16], exc)
    result = reconstruct(group.setup, roster, shares, masked, unmask)
    return result.total, result.count


def combine_groups(store: ContentStore, plan: RoundPlan, task: TaskRecord, rnd: RoundRecord,
                   board: Mapping[str, Any], contributions: list[ContributionRecord],
                   only_groups: set[int] | None = None) -> SecureOutcome:
    """Unmask every group with survivors, then combine the group means with the task's rule.

    `only_groups` restricts the work to the groups a published version used (for verification).
    """
    sa = rnd["secagg"]
    by_who = {c["participant"]: c for c in contributions}
    outcome = SecureOutcome(vector=None)
    means: list[npt.NDArray[np.float32]] = []
    counts: list[int] = []
    used: list[GroupPlan] = []
    for group in plan.groups:
        if only_groups is not None and group.number not in only_groups:
            continue
        if not any(plan.index_of(w) in group.members for w in sa["survivors"]):
            continue
        try:
            total, count = _group_sum(store, plan, group, board, sa, by_who)
        except (StoreError, SecAggError) as exc:
            outcome.failed_groups[group.number] = str(exc)
            log.warning("group %d could not be unmasked: %s", group.number, exc)
            continue
        means.append(group.quantizer.dequantize_mean(total, count))
        counts.append(count)
        used.append(group)
    if not used:
        return outcome
    policy = task["aggregation"]
    vector, verdicts = combine_rows(np.stack(means), np.asarray(counts, dtype=np.int64), policy["rule"],
                                    policy["byzantine"])
    outcome.vector = plan.from_wire(vector)
    for group, verdict in zip(used, verdicts, strict=True):
        members = [w for w in sa["survivors"] if plan.index_of(w) in group.members]
        (outcome.flagged if verdict == "flagged" else outcome.contributors).extend(members)
    outcome.contributors.sort()
    outcome.flagged.sort()
    return outcome
