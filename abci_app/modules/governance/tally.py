"""Tallying proposals at their deadline in end_block, and executing the ones that pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from fedledger.abci_app.context import BlockContext, Event, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import EVENT_TYPE
from fedledger.abci_app.modules.governance import keys
from fedledger.abci_app.modules.governance.actions import run_action
from fedledger.abci_app.modules.governance.params import PPM, effective_weights, load_params
from fedledger.abci_app.modules.governance.records import ProposalRecord, TallyRecord
from fedledger.abci_app.records import load_record, store_record

__all__ = ["Tally", "compute_tally", "end_block", "tally_event"]


@dataclass(frozen=True)
class Tally:
    """Weighted counts of a proposal's votes and what they decide."""

    yes: int
    no: int
    abstain: int
    total: int  # the weight of every organization registered at the tally
    quorum_reached: bool
    passed: bool

    def to_json(self) -> TallyRecord:
        """Record form."""
        return {"yes": self.yes, "no": self.no, "abstain": self.abstain, "total": self.total,
                "quorum_reached": self.quorum_reached, "passed": self.passed}


def compute_tally(votes: Mapping[str, str], weights: Sequence[tuple[str, int]], quorum_ppm: int,
                  threshold_ppm: int) -> Tally:
    """Tally one vote per organization with integer arithmetic only.

    Quorum: the weight that voted at all (abstentions included) is at least quorum_ppm of the total
    weight, and the total is positive. Threshold: yes is strictly more than threshold_ppm of yes + no
    (abstentions count toward quorum only). Votes of organizations no longer registered are ignored.
    """
    weight_of = dict(weights)
    counts = {"yes": 0, "no": 0, "abstain": 0}
    for org in sorted(votes):
        if org in weight_of:
            counts[votes[org]] += weight_of[org]
    total = sum(weight_of.values())
    cast = counts["yes"] + counts["no"] + counts["abstain"]
    quorum = total > 0 and cast * PPM >= quorum_ppm * total
    passed = quorum and counts["yes"] * PPM > threshold_ppm * (counts["yes"] + counts["no"])
    return Tally(yes=counts["yes"], no=counts["no"], abstain=counts["abstain"], total=total,
                 quorum_reached=quorum, passed=passed)


def tally_event(action: str, **attrs: str | int) -> Event:
    """An `fl` event emitted by the chain itself (no signer): action first, then sorted attributes."""
    return Event(type=EVENT_TYPE, attributes=(("action", action), *((k, str(v)) for k, v in sorted(attrs.items()))))


def _finish(state: Writer, ctx: BlockContext, proposal_id: int) -> list[Event]:
    key = keys.proposal_key(proposal_id)
    proposal = cast(ProposalRecord | None, load_record(state, key))
    if proposal is None or proposal["status"] != "voting":
        raise RuntimeError(f"state invariant violated: queued proposal {proposal_id} is missing or not voting")
    params = load_params(state)
    votes = {org: vote["option"] for org, vote in proposal["votes"].items()}
    tally = compute_tally(votes, effective_weights(state, params), proposal["quorum_ppm"], proposal["threshold_ppm"])
    proposal["tally"] = tally.to_json()
    proposal["final_height"] = ctx.height
    proposal["outcome"] = "passed" if tally.passed else "rejected"
    if not tally.quorum_reached:
        proposal["status"], proposal["reason"] = "rejected", (
            f"no quorum: {tally.yes + tally.no + tally.abstain} of {tally.total} weight voted, "
            f"{proposal['quorum_ppm']} ppm needed")
    elif not tally.passed:
        proposal["status"], proposal["reason"] = "rejected", (
            f"threshold not met: yes {tally.yes} against no {tally.no}, more than "
            f"{proposal['threshold_ppm']} ppm of yes + no needed")
    action_events: list[Event] = []
    if tally.passed:
        try:
            action_events = run_action(state, proposal["action"], ctx)
            proposal["status"], proposal["reason"] = "passed", None
        except TxError as exc:
            # The chain goes on; the proposal records why its action could not run (nothing was written).
            proposal["status"], proposal["reason"] = "failed", f"{exc.code.name}: {exc.log}"
        except ValueError as exc:
            proposal["status"], proposal["reason"] = "failed", f"{Code.ACTION_INVALID.name}: {exc}"
    store_record(state, key, proposal)
    return [tally_event("tally_proposal", proposal=proposal_id, status=proposal["status"],
                        action_type=proposal["action"]["type"], yes=tally.yes, no=tally.no, abstain=tally.abstain),
            *action_events]


def end_block(state: Writer, ctx: BlockContext) -> list[Event]:
    """Tally every proposal whose deadline is this height or earlier, by (deadline, id); execute those that pass."""
    due = state.get(keys.NEXT_DUE_KEY)
    if due is None or int(due) > ctx.height:
        return []  # the common case: one read per block
    entries = []
    for key, _ in state.iter_prefix(keys.QUEUE_PREFIX):
        deadline, proposal_id = keys.queue_entry(key)
        if deadline > ctx.height:
            break
        entries.append((key, proposal_id))
    events = []
    for key, proposal_id in entries:
        state.delete(key)
        events += _finish(state, ctx, proposal_id)
    nxt = next(iter(state.iter_prefix(keys.QUEUE_PREFIX)), None)
    if nxt is None:
        state.delete(keys.NEXT_DUE_KEY)
    else:
        state.set(keys.NEXT_DUE_KEY, b"%d" % keys.queue_entry(nxt[0])[0])
    return events
