"""Deciding model versions: quorum of weighted attestations, weighted medians, last-good pointer, rollback.

Everything here is consensus code: integers only, records iterated in key order, and every
function that writes checks everything first and raises TxError before its first write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.evm_engine.policy import PolicySession, consult_promotion
from fedledger.abci_app.evm_engine.policy import summary as policy_summary
from fedledger.abci_app.modules.federation.keeper import (
    find_contribution,
    find_version,
    store_version,
    task_exists,
    version_numbers,
    versions,
)
from fedledger.abci_app.modules.federation.records import VersionRecord
from fedledger.abci_app.modules.lifecycle import keys
from fedledger.abci_app.modules.lifecycle.params import check_task_params, store_task_params
from fedledger.abci_app.modules.lifecycle.pointer import last_good, pointer
from fedledger.abci_app.modules.lifecycle.records import (
    AttestationRecord,
    DecisionSummary,
    HistoryEntry,
    PointerRecord,
)
from fedledger.abci_app.modules.reputation.keeper import check_did, on_version_outcome
from fedledger.abci_app.records import load_record, store_record

__all__ = [
    "GOVERNANCE",
    "Decision",
    "RollbackPlan",
    "apply_decision",
    "attestations",
    "check_rollback",
    "decide",
    "last_good",
    "pointer",
    "promotion_policy",
    "rollback",
    "set_task_params",
    "weighted_median",
]

_BAD_STATUSES = frozenset({"quarantined", "rolled_back"})
# Reasons the chain decides itself whatever a policy contract says (the contract ABI predates them).
_NATIVE_ONLY = frozenset({"canary_accuracy_regressed"})
GOVERNANCE = "governance"  # the `signer` attribute of events emitted on governance's behalf


def attestations(view: Reader, task_id: str, version: int) -> list[AttestationRecord]:
    """Every attestation of a version, sorted by evaluator DID."""
    out = []
    for key, _ in view.iter_prefix(keys.attestation_prefix(task_id, version)):
        rec = load_record(view, key)
        if rec is None:  # iter_prefix only yields present keys
            raise RuntimeError(f"state invariant violated: attestation at {key!r} vanished")
        out.append(cast(AttestationRecord, rec))
    return out


def weighted_median(points: Sequence[tuple[int, int]], *, upper: bool) -> int:
    """The weighted median of integer (value, weight) points; weights >= 0 with a positive total.

    Values are taken in ascending order; the median is the first value at which the cumulative
    weight reaches half of the total. Tie rule: when the weight splits exactly in half between two
    values, upper=False returns the lower of the two and upper=True the higher. The lifecycle uses
    the side less favourable to promotion: the lower for canary accuracy, the higher for ASR.
    """
    pts = sorted((v, w) for v, w in points if w > 0)
    total = sum(w for _, w in pts)
    if total <= 0:
        raise ValueError("weighted median of no positive weight")
    cum = 0
    for value, weight in pts:
        cum += weight
        if 2 * cum > total or (not upper and 2 * cum == total):
            return value
    raise AssertionError("unreachable: cumulative weight reaches the total")


@dataclass(frozen=True)
class Decision:
    """The outcome of a version whose attestations reached quorum."""

    status: Literal["promoted", "quarantined"]
    summary: DecisionSummary  # what is written into the version record as its `decision`
    contributor_dids: tuple[str, ...]  # DIDs behind the version's contributions (sorted, unique), for reputation


def _contributor_dids(view: Reader, task_id: str, version_rec: VersionRecord) -> tuple[str, ...]:
    """The DIDs that contributed to a version, checked usable by the reputation module (TxError if not)."""
    dids = set()
    for who in version_rec.get("contributors") or []:
        contrib = find_contribution(view, task_id, version_rec["round"], who)
        if contrib is not None and contrib.get("did") is not None:
            dids.add(check_did(contrib["did"]))
    return tuple(sorted(dids))


def _last_good_accuracy(view: Reader, task_id: str) -> int | None:
    """The canary accuracy (ppm) the task's last good version was promoted with; None for version 0."""
    good = last_good(view, task_id)
    if good == 0:
        return None
    rec = find_version(view, task_id, good)
    if rec is None or not isinstance(rec.get("decision"), dict):
        return None
    return int(rec["decision"]["canary_accuracy_ppm"])


def decide(view: Reader, task_id: str, version_rec: VersionRecord, atts: Sequence[AttestationRecord],
           params: Mapping[str, int]) -> Decision | None:
    """Decide a version from its attestations, or None while their weight is below the quorum.

    Promote iff the weighted median canary accuracy >= min_canary_accuracy_ppm and is at most
    max_regression_ppm below the accuracy the last good version was promoted with, the weighted median
    ASR <= max_backdoor_asr_ppm, and the version's parent is not quarantined or rolled back (a model
    built on a bad model is not trusted whatever it measures); otherwise quarantine.
    """
    weight = sum(int(a["weight"]) for a in atts)
    if weight < params["quorum_weight"] or weight <= 0:
        return None
    accuracy = weighted_median([(a["canary_accuracy_ppm"], a["weight"]) for a in atts], upper=False)
    asr = weighted_median([(a["backdoor_asr_ppm"], a["weight"]) for a in atts], upper=True)
    reasons = []
    if accuracy < params["min_canary_accuracy_ppm"]:
        reasons.append("canary_accuracy_below_min")
    if asr > params["max_backdoor_asr_ppm"]:
        reasons.append("backdoor_asr_above_max")
    reference = _last_good_accuracy(view, task_id)
    if reference is not None and accuracy + params["max_regression_ppm"] < reference:
        reasons.append("canary_accuracy_regressed")
    parent = version_rec.get("parent")
    if parent is not None:
        parent_rec = find_version(view, task_id, parent)
        if parent_rec is not None and parent_rec["status"] in _BAD_STATUSES:
            reasons.append(f"parent_{parent_rec['status']}")
    summary: DecisionSummary = {
        "attestations": len(atts), "weight": weight, "quorum_weight": params["quorum_weight"],
        "evaluators": sorted(a["evaluator"] for a in atts),
        "canary_accuracy_ppm": accuracy, "backdoor_asr_ppm": asr,
        "min_canary_accuracy_ppm": params["min_canary_accuracy_ppm"],
        "max_backdoor_asr_ppm": params["max_backdoor_asr_ppm"], "reasons": reasons,
    }
    return Decision(status="quarantined" if reasons else "promoted", summary=summary,
                    contributor_dids=_contributor_dids(view, task_id, version_rec))


def promotion_policy(view: Reader, ctx: BlockContext, task_id: str, version_rec: VersionRecord,
                     decision: Decision) -> tuple[Decision, PolicySession | None]:
    """Let the task's promotion policy contract decide in place of the thresholds, when the chain has one.

    The parent and regression rules stay native: a version built on a quarantined or rolled-back parent is
    quarantined whatever the policy says. A deny's reason (comma-separated codes) becomes the
    decision's reasons; a failed call (revert, out of gas, malformed answer) quarantines with
    its reason. Returns the decision and the policy session to record with it (None: no policy).
    """
    asked = consult_promotion(view, ctx, task_id, int(version_rec["version"]), dict(decision.summary))
    if asked is None:
        return decision, None
    verdict, session = asked
    if verdict.allow:
        policy_reasons: list[str] = []
    elif verdict.outcome.success:
        policy_reasons = [r for r in verdict.reason.split(",") if r] or ["policy_denied"]
    else:
        policy_reasons = [verdict.reason]
    reasons = policy_reasons + [r for r in decision.summary["reasons"] if r in _NATIVE_ONLY or r.startswith("parent_")]
    summary: DecisionSummary = {**decision.summary, "reasons": reasons,
                                "policy": policy_summary(verdict)}
    return Decision(status="quarantined" if reasons else "promoted", summary=summary,
                    contributor_dids=decision.contributor_dids), session


def _append_history(state: Writer, ptr: PointerRecord, entry: HistoryEntry) -> None:
    """Store the pointer with one more decision and the decision's history entry (numbered from 1)."""
    ptr["decisions"] += 1
    entry["seq"] = ptr["decisions"]
    store_record(state, keys.history_key(ptr["task_id"], ptr["decisions"]), entry)
    store_record(state, keys.pointer_key(ptr["task_id"]), ptr)


def apply_decision(state: Writer, task_id: str, version_rec: VersionRecord, decision: Decision, height: int,
                   signer: str) -> list[Event]:
    """Write a decision: the version's status, decided_height and summary; the pointer; the history.

    The contributors' reputations move too (reputation.on_version_outcome), first: it validates
    everything before writing, so if it refuses nothing at all has been written.
    """
    events = on_version_outcome(state, list(decision.contributor_dids), decision.status == "promoted", height)
    version = int(version_rec["version"])
    ptr = pointer(state, task_id)
    before = ptr["last_good"]
    version_rec["status"] = decision.status
    version_rec["decided_height"] = height
    version_rec["decision"] = decision.summary
    store_version(state, version_rec)
    # The pointer only moves forward on promotion: an older version promoted late (decisions can
    # arrive out of order) never displaces a newer good one.
    if decision.status == "promoted" and version > before:
        ptr["last_good"] = version
        ptr["last_good_height"] = height
    _append_history(state, ptr, {
        "action": decision.status, "task_id": task_id, "version": version, "height": height,
        "last_good_before": before, "last_good_after": ptr["last_good"], "decision": decision.summary,
    })
    return [fl_event("decide_version", signer, task=task_id, version=version, status=decision.status,
                     canary_accuracy_ppm=decision.summary["canary_accuracy_ppm"],
                     backdoor_asr_ppm=decision.summary["backdoor_asr_ppm"], last_good=ptr["last_good"]), *events]


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback will do: last_good moves from from_version to to_version; rolled_back are marked."""

    task_id: str
    from_version: int
    to_version: int
    rolled_back: tuple[int, ...]  # every promoted version above to_version, ascending


def _promoted(view: Reader, task_id: str) -> list[int]:
    """The task's promoted versions, ascending (version keys are zero-padded, so key order is numeric)."""
    out = []
    for rec in versions(view, task_id):
        if rec["status"] == "promoted":
            out.append(int(rec["version"]))
    return out


def check_rollback(view: Reader, task_id: str, to_version: int | None) -> RollbackPlan:
    """Plan a rollback against state, reading only; TxError says why it cannot happen.

    to_version None rolls back one step: the current last-good version is marked rolled_back and
    last_good moves to the previous promoted version (or 0). A named to_version must be 0 or a
    promoted version below last_good: every promoted version above it is marked rolled_back and
    last_good becomes to_version. Version numbers never change.
    """
    if not task_exists(view, task_id):
        raise TxError(Code.NOT_FOUND, f"task {task_id!r} does not exist")
    current = last_good(view, task_id)
    if current == 0:
        raise TxError(Code.ROLLBACK_REFUSED, f"task {task_id!r} has no promoted version to roll back: its last "
                                             "good version is 0, the initial model")
    promoted = _promoted(view, task_id)
    if to_version is None:
        below = [v for v in promoted if v < current]
        target = below[-1] if below else 0
    else:
        if isinstance(to_version, bool) or not isinstance(to_version, int) or to_version < 0:
            raise TxError(Code.INVALID_BODY, f"rollback target must be a version number, got {to_version!r}")
        if to_version >= current:
            raise TxError(Code.ROLLBACK_REFUSED, f"rollback target {to_version} is not below the last good "
                                                 f"version {current} of {task_id!r}")
        if to_version != 0:
            rec = find_version(view, task_id, to_version)
            if rec is None:
                raise TxError(Code.NOT_FOUND, f"version {to_version} of {task_id!r} does not exist")
            if rec["status"] != "promoted":
                raise TxError(Code.ROLLBACK_REFUSED, f"version {to_version} of {task_id!r} is {rec['status']}; "
                                                     "only a promoted version (or 0) can become last good")
        target = to_version
    return RollbackPlan(task_id=task_id, from_version=current, to_version=target,
                        rolled_back=tuple(v for v in promoted if v > target))


def rollback(state: Writer, task_id: str, to_version: int | None, height: int) -> list[Event]:
    """Roll a task's last good version back (see check_rollback); called by governance. Returns events.

    Checks first (raising TxError with no write), then marks each rolled-back version's record
    status "rolled_back" with rolled_back_height, moves last_good and appends one history entry.
    """
    plan = check_rollback(state, task_id, to_version)
    for version in plan.rolled_back:
        rec = find_version(state, task_id, version)
        if rec is None:
            raise RuntimeError(f"state invariant violated: promoted version {version} vanished")
        rec["status"] = "rolled_back"
        rec["rolled_back_height"] = height
        store_version(state, rec)
    ptr = pointer(state, task_id)
    ptr["last_good"] = plan.to_version
    ptr["last_good_height"] = height
    _append_history(state, ptr, {
        "action": "rolled_back", "task_id": task_id, "versions": list(plan.rolled_back), "height": height,
        "last_good_before": plan.from_version, "last_good_after": plan.to_version,
    })
    return [fl_event("rollback", GOVERNANCE, task=task_id, from_version=plan.from_version,
                     to_version=plan.to_version, versions=",".join(str(v) for v in plan.rolled_back),
                     last_good=plan.to_version)]


def set_task_params(state: Writer, task_id: str, params: Mapping[str, Any], height: int | None = None,
                    ctx: BlockContext | None = None) -> list[Event]:
    """Change a task's lifecycle params (any subset of PARAM_NAMES); called by governance. Returns events.

    Checks first (check_task_params: NOT_FOUND, INVALID_BODY), then writes. With height given,
    versions still "proposed" whose attestations already meet the new params' quorum are decided
    at that height in the same tx (ascending version order); without it they are decided at their
    next attestation. With ctx, the task's promotion policy contract decides them (promotion_policy).
    """
    merged = check_task_params(state, task_id, params)
    store_task_params(state, task_id, merged)
    events = [fl_event("set_lifecycle_params", GOVERNANCE, task=task_id, **merged)]
    if height is None:
        return events
    # Keys are collected before any write: deciding rewrites records under the prefix being read.
    for number in version_numbers(state, task_id):
        rec = find_version(state, task_id, number)
        if rec is None or rec["status"] != "proposed":
            continue
        decision = decide(state, task_id, rec, attestations(state, task_id, rec["version"]), merged)
        if decision is not None:
            policy = None
            if ctx is not None:
                decision, policy = promotion_policy(state, ctx, task_id, rec, decision)
            events += apply_decision(state, task_id, rec, decision, height, GOVERNANCE)
            if policy is not None:
                events += policy.record(state)
    return events
