"""The governance module's chain records: its params and proposals with their votes and tally.

Light on purpose (typing only): the CLI and off-chain tools read these shapes too.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = ["GovParams", "ProposalRecord", "ProposalStatus", "TallyRecord", "VoteRecord"]


class GovParams(TypedDict):
    """`gov/params`."""

    voting_period_blocks: int
    quorum_ppm: int
    threshold_ppm: int
    weights: dict[str, int]  # organization -> weight (absent: DEFAULT_WEIGHT)


class VoteRecord(TypedDict):
    """One organization's vote on a proposal."""

    option: str
    voter: str
    signer: str
    height: int


class TallyRecord(TypedDict):
    """A finished proposal's tally (tally.Tally.to_json)."""

    yes: int
    no: int
    abstain: int
    total: int
    quorum_reached: bool
    passed: bool


ProposalStatus = Literal["voting", "passed", "rejected", "failed"]


class ProposalRecord(TypedDict):
    """`gov/proposal/<id>`."""

    id: int
    title: str
    description: str
    # The normalized action body: its shape depends on its "type" (governance/actions.py parses each).
    action: dict[str, Any]
    proposer: str
    proposer_did: str
    organization: str
    submitted_height: int
    deadline_height: int
    quorum_ppm: int
    threshold_ppm: int
    status: ProposalStatus
    votes: dict[str, VoteRecord]  # organization -> vote
    tally: TallyRecord | None
    outcome: Literal["passed", "rejected"] | None
    reason: str | None
    final_height: int | None
