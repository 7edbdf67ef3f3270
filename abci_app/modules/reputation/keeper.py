"""The reputation keeper: score reads, the movement hooks, the weighted draw, and the params governance changes."""

from __future__ import annotations

from fedledger.abci_app.modules.reputation.genesis import params, set_params, validate_params
from fedledger.abci_app.modules.reputation.hooks import (
    check_did,
    on_contribution_accepted,
    on_contribution_rejected,
    on_inference_penalty,
    on_version_outcome,
    score_at,
    scores_at,
)
from fedledger.abci_app.modules.reputation.selection import select

__all__ = [
    "check_did",
    "on_contribution_accepted",
    "on_contribution_rejected",
    "on_inference_penalty",
    "on_version_outcome",
    "params",
    "score_at",
    "scores_at",
    "select",
    "set_params",
    "validate_params",
]
