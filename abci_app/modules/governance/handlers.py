"""Governance tx handlers: organization administrators submit proposals and vote for their organization."""

from __future__ import annotations

from typing import cast

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.events import fl_event
from fedledger.abci_app.modules.base import Handler
from fedledger.abci_app.modules.governance import keys
from fedledger.abci_app.modules.governance.actions import check_action
from fedledger.abci_app.modules.governance.authz import require_governor
from fedledger.abci_app.modules.governance.msgs import MAX_PROPOSAL_ID, SubmitProposal, Vote
from fedledger.abci_app.modules.governance.params import load_params
from fedledger.abci_app.modules.governance.records import ProposalRecord
from fedledger.abci_app.records import load_record, store_record

__all__ = ["HANDLERS"]


def _next_id(view: Reader) -> int:
    raw = view.get(keys.NEXT_ID_KEY)
    return int(raw) if raw is not None else 1


def submit_proposal(view: Reader, state: Writer | None, ctx: BlockContext, signer: str,
                    msg: SubmitProposal) -> list[Event]:
    """Record a proposal open for votes until height + voting period; its action must be valid now."""
    gov = require_governor(view, signer, ctx, msg.organization, "submit proposals")
    check_action(view, msg.action)
    proposal_id = _next_id(view)
    if proposal_id > MAX_PROPOSAL_ID:
        raise TxError(Code.ACTION_INVALID, "this chain has used up its proposal ids")
    params = load_params(view)
    deadline = ctx.height + params["voting_period_blocks"]
    if state is not None:
        store_record(state, keys.proposal_key(proposal_id), {
            "id": proposal_id, "title": msg.title, "description": msg.description, "action": msg.action,
            "proposer": signer, "proposer_did": gov.did, "organization": gov.organization,
            "submitted_height": ctx.height, "deadline_height": deadline,
            # The rule is fixed when voting opens, so voters know what they are voting under.
            "quorum_ppm": params["quorum_ppm"], "threshold_ppm": params["threshold_ppm"],
            "status": "voting", "votes": {}, "tally": None, "outcome": None, "reason": None, "final_height": None,
        })
        state.set(keys.NEXT_ID_KEY, b"%d" % (proposal_id + 1))
        state.set(keys.queue_key(deadline, proposal_id), b"")
        due = state.get(keys.NEXT_DUE_KEY)
        if due is None or int(due) > deadline:
            state.set(keys.NEXT_DUE_KEY, b"%d" % deadline)
    return [fl_event("submit_proposal", signer, proposal=proposal_id, organization=gov.organization,
                     action_type=msg.action["type"], deadline=deadline)]


def vote(view: Reader, state: Writer | None, ctx: BlockContext, signer: str, msg: Vote) -> list[Event]:
    """Record (or replace) the vote of the signer's organization on a proposal still open for votes."""
    gov = require_governor(view, signer, ctx, msg.organization, "vote")
    key = keys.proposal_key(msg.proposal_id)
    proposal = cast(ProposalRecord | None, load_record(view, key))
    if proposal is None:
        raise TxError(Code.NOT_FOUND, f"proposal {msg.proposal_id} does not exist")
    if proposal["status"] != "voting" or ctx.height > proposal["deadline_height"]:
        raise TxError(Code.VOTING_CLOSED, f"proposal {msg.proposal_id} is {proposal['status']}; voting ended at "
                                          f"height {proposal['deadline_height']}")
    replaced = proposal["votes"].get(gov.organization)
    if state is not None:
        proposal["votes"][gov.organization] = {"option": msg.option, "voter": gov.did, "signer": signer,
                                               "height": ctx.height}
        store_record(state, key, proposal)
    extra = {"replaced": replaced["option"]} if replaced is not None else {}
    return [fl_event("vote", signer, proposal=msg.proposal_id, organization=gov.organization, option=msg.option,
                     **extra)]


HANDLERS: dict[str, Handler] = {
    "submit_proposal": submit_proposal,
    "vote": vote,
}
