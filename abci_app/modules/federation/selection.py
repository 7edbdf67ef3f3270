"""Who may contribute to a round: a verifiable draw from the block hash, weighted by reputation.

Candidates are the active trainers whose credential covers the task and who have not declared
themselves unavailable. When there are no more of them than the round's size, all are selected;
otherwise `reputation.select` draws `round_size` of them from the opening block's hash, so
anyone can recompute the selection from chain state. The weight is the trainer's score capped at
the reputation module's initial score: reputation can cost a trainer its chance, never buy it a
larger one.
"""

from __future__ import annotations

from fedledger.abci_app.context import BlockContext, Reader
from fedledger.abci_app.modules.federation import keys
from fedledger.abci_app.modules.identity.keeper import member_for_key, members
from fedledger.abci_app.modules.reputation.keeper import params, scores_at, select

__all__ = ["eligible", "select_participants"]


def eligible(view: Reader, task_id: str, ctx: BlockContext) -> list[tuple[str, str, bool]]:
    """(did, signing key, available) of every active trainer allowed on the task at `ctx`, sorted by DID."""
    out = []
    for member in members(view):
        if member["role"] != "trainer" or member_for_key(view, member["key"], ctx) is None:
            continue
        if member["tasks"] and task_id not in member["tasks"]:
            continue
        available = view.get(keys.availability_key(task_id, member["did"])) != b"0"
        out.append((member["did"], member["key"], available))
    return out


def select_participants(view: Reader, task_id: str, k: int, ctx: BlockContext) -> list[str]:
    """The signing keys selected for a round opened in `ctx`, sorted."""
    pool = eligible(view, task_id, ctx)
    available = [(did, key) for did, key, ok in pool if ok]
    if len(available) <= k:
        return sorted(key for _, key in available)
    by_did = dict(available)
    # Reputation above the initial score buys no extra chance: rounds keep drawing from the whole
    # federation (every round's data stays diverse), while a score that fell (flagged, screened,
    # quarantined) lowers a trainer's chance toward none.
    initial = int(params(view)["initial"])
    scores = [min(score, initial) for score in scores_at(view, [did for did, _, _ in pool], ctx.height)]
    drawn = select([(did, score, ok) for (did, _, ok), score in zip(pool, scores, strict=True)], ctx.block_hash, k)
    return sorted(by_did[did] for did in drawn)
