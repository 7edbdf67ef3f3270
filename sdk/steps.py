"""What one `step()` of a service did, as a typed result instead of a sentence to parse.

The aggregator, the evaluator and the SecAgg+ participant each advance the chain by at most one
action per step. Callers branch on `action` (and read `round`/`version`); `str(step)` is the line a
person sees, unchanged from the logs and the demo.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Action", "Step"]


class Action(StrEnum):
    """Every kind of step a service can take; the value is stable, for logs and JSON."""

    IDLE = "idle"  # nothing to do
    WAITING = "waiting"  # something is pending on others (trainers, evaluators, the owner, a stage)
    FINISHED = "finished"  # the configured number of rounds is done
    ERROR = "error"  # the step failed in a way a later step may not (a dead RPC, a retryable rejection)
    # aggregator
    OPENED_ROUND = "opened_round"
    CLOSED_ROUND = "closed_round"
    ADVANCED_STAGE = "advanced_stage"
    FIXED_SURVIVORS = "fixed_survivors"
    FAILED_ROUND = "failed_round"
    PROPOSED_VERSION = "proposed_version"
    # evaluator
    ATTESTED = "attested"
    SKIPPED = "skipped"  # the version was decided before this evaluator's attestation landed
    EVALUATION_FAILED = "evaluation_failed"  # the payload or probe could not be evaluated; retried later
    # SecAgg+ participant
    NOT_SELECTED = "not_selected"
    SAT_OUT = "sat_out"  # no secrets for this round (a restart): sitting it out
    POSTED_KEYS = "posted_keys"
    POSTED_SHARES = "posted_shares"
    COMMITTED_INPUT = "committed_input"
    REVEALED_SHARES = "revealed_shares"
    REFUSED_UNMASK = "refused_unmask"  # too few survivors in the group: unmasking would expose an input


@dataclass(frozen=True)
class Step:
    """One step's outcome: its action, the round or version it concerns, and the sentence for people."""

    action: Action
    text: str
    round: int | None = None
    version: int | None = None

    @property
    def quiet(self) -> bool:
        """Nothing moved: the service may sleep until the chain changes."""
        return self.action in _QUIET

    def __str__(self) -> str:
        return self.text


_QUIET = frozenset({Action.IDLE, Action.WAITING, Action.FINISHED, Action.ERROR, Action.EVALUATION_FAILED})
