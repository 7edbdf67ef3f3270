"""Who is the majority among one request's receipts: a pure, deterministic rule over integers.

The rule, so anyone can recompute a tally: order the receipts by node DID (ASCII). For each
receipt count the receipts that agree with it (receipts.agree, itself included). The receipt with
the most agreers wins, the earliest in DID order on a tie. If its agreers are a strict majority of
all the receipts, they are the majority and every other receipt is a dissenter; otherwise there is
no majority (the request is "split") and nobody is penalized, because nobody can tell who lied.
Agreement within the tolerance is not transitive, so the rule fixes one reference receipt rather
than clustering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedledger.abci_app.modules.inference.receipts import Receipt, agree

__all__ = ["Tally", "tally"]


@dataclass(frozen=True)
class Tally:
    """The outcome of one request: majority and dissenting node DIDs (both sorted), or no majority."""

    majority: tuple[str, ...]
    dissenters: tuple[str, ...]
    decided: bool  # False: no strict majority; majority and dissenters are then empty

    @property
    def outcome(self) -> str:
        """"unanimous", "majority" or "split"."""
        if not self.decided:
            return "split"
        return "majority" if self.dissenters else "unanimous"


def tally(receipts: Sequence[Receipt]) -> Tally:
    """Apply the rule above to one request's receipts (one per node)."""
    ordered = sorted(receipts, key=lambda r: r.node.encode("ascii"))
    if not ordered:
        return Tally(majority=(), dissenters=(), decided=False)
    best: list[Receipt] = []
    for ref in ordered:
        agreers = [r for r in ordered if agree(ref, r)]
        if len(agreers) > len(best):
            best = agreers
    if 2 * len(best) <= len(ordered):
        return Tally(majority=(), dissenters=(), decided=False)
    winners = {r.node for r in best}
    return Tally(majority=tuple(sorted(winners)),
                 dissenters=tuple(sorted(r.node for r in ordered if r.node not in winners)), decided=True)
