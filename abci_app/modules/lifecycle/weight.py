"""How much an evaluator's attestation counts toward a version's quorum: its reputation score."""

from __future__ import annotations

from fedledger.abci_app.context import Reader
from fedledger.abci_app.modules.reputation.keeper import score_at

__all__ = ["evaluator_weight"]


def evaluator_weight(view: Reader, did: str, height: int) -> int:
    """The integer weight of evaluator `did`'s attestation made at `height` (0: it does not count).

    It is the evaluator's reputation score at that height, in the reputation module's micro-units
    (a never-moved DID has the reputation `initial`, 1_000_000 by default), so the lifecycle's
    quorum_weight is in the same unit: the default 2_000_000 is two evaluators of initial standing.
    This function is the one seam to change if attestations should be weighted otherwise.
    """
    return score_at(view, did, height)
