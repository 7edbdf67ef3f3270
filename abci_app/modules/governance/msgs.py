"""Message bodies of the governance tx types and their stateless validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.fields import require_fields
from fedledger.abci_app.modules.governance.actions import parse_action

__all__ = ["MAX_PROPOSAL_ID", "OPTIONS", "PARSERS", "SubmitProposal", "Vote"]

OPTIONS: tuple[str, ...] = ("abstain", "no", "yes")
MAX_PROPOSAL_ID = 10**10 - 1  # ids are zero-padded to 10 digits in keys
_ORG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TITLE_RE = re.compile(r"^[\x20-\x7e]{1,200}$")
_TEXT_RE = re.compile(r"^[\x20-\x7e\n]{0,4000}$")





def _organization(body: dict[str, Any]) -> str | None:
    org = body.get("organization")
    if org is not None and (not isinstance(org, str) or not _ORG_RE.match(org)):
        raise TxError(Code.INVALID_BODY, "organization must be an organization id")
    return org


@dataclass(frozen=True)
class SubmitProposal:
    """An organization administrator proposes an action for the organizations to vote on."""

    title: str
    description: str
    action: dict[str, Any]  # normalized by the action registry
    organization: str | None  # which organization the signer acts for, if it administers several

    @staticmethod
    def parse(body: dict[str, Any]) -> SubmitProposal:
        """Validate a submit_proposal body and its action's fields."""
        require_fields(body, {"title", "action"}, {"description", "organization"})
        title, description = body["title"], body.get("description", "")
        if not isinstance(title, str) or not _TITLE_RE.match(title):
            raise TxError(Code.INVALID_BODY, "title must be 1-200 printable ASCII characters")
        if not isinstance(description, str) or not _TEXT_RE.match(description):
            raise TxError(Code.INVALID_BODY, "description must be at most 4000 printable ASCII characters")
        return SubmitProposal(title=title, description=description, action=parse_action(body["action"]),
                              organization=_organization(body))


@dataclass(frozen=True)
class Vote:
    """An organization's vote on a proposal; a later vote by the same organization replaces it."""

    proposal_id: int
    option: str
    organization: str | None

    @staticmethod
    def parse(body: dict[str, Any]) -> Vote:
        """Validate a vote body."""
        require_fields(body, {"proposal_id", "option"}, {"organization"})
        pid, option = body["proposal_id"], body["option"]
        if not isinstance(pid, int) or isinstance(pid, bool) or not 1 <= pid <= MAX_PROPOSAL_ID:
            raise TxError(Code.INVALID_BODY, f"proposal_id must be an integer in [1, {MAX_PROPOSAL_ID}]")
        if option not in OPTIONS:
            raise TxError(Code.INVALID_BODY, f"option must be one of {list(OPTIONS)}")
        return Vote(proposal_id=pid, option=option, organization=_organization(body))


PARSERS: dict[str, Callable[[dict[str, Any]], object]] = {
    "submit_proposal": SubmitProposal.parse,
    "vote": Vote.parse,
}
