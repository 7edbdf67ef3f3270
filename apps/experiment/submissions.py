"""What each selected client masks and claims in a round: its update, clipped and noised, and its screen claims.

Honest clients follow FedLedger's client code: clip the whole update to `clip_norm` in L2, claim
its projection on the round's reference and its norm (`fedledger.node.aggregation.screen`), and,
under distributed DP, add their share of the noise (`fedledger.sdk.dp.add_distributed_noise`,
sized for the noise quorum of their SecAgg group). Data poisoners (label flip, backdoor) run that
same client code on their poisoned data: their updates are clipped and noised like everyone's,
so the norm bound alone cannot catch them. Model poisoners (every update attack) submit the
attack's vector as it is, unclipped and un-noised: SecAgg cannot make them clip, which is exactly
why the screen and its claims exist. Their claims are the true ones of what they submit (the harness's attacks
do not lie; see the screen's module docstring for what a lying client can and cannot do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.apps.experiment.attacks import DATA_ATTACKS
from fedledger.apps.experiment.common import ClientUpdate, RunContext, derive_seed
from fedledger.apps.experiment.secure import noise_quorum
from fedledger.node.aggregation.screen import Claim, claim_for
from fedledger.sdk.dp import add_distributed_noise, clip_update, declared_dp

__all__ = ["Submission", "submissions"]


@dataclass(frozen=True, eq=False)
class Submission:
    """One client's input to a round: the row it masks, its claims, examples and declared DP mechanism."""

    client: int
    row: npt.NDArray[np.float32]
    claim: Claim | None
    num_examples: int
    dp: dict[str, object] | None


def submissions(ctx: RunContext, updates: Sequence[ClientUpdate], number: int, unit_ref: npt.NDArray[np.float64] | None,
                group_sizes: Mapping[int, int], *, clip: bool, noise: bool) -> list[Submission]:
    """The round's inputs, in the order of `updates`.

    clip: honest clients clip to cfg.clip_norm; noise: they add distributed DP noise (σ = noise_multiplier)
    for their group (group_sizes: client -> its SecAgg group's size); unit_ref: the round's reference
    (None: no claims).
    """
    cfg = ctx.cfg
    sigma, c = float(cfg.noise_multiplier), float(cfg.clip_norm)
    declared = declared_dp(cfg.noise_multiplier, cfg.clip_norm) if noise else None
    follows = ctx.attack in DATA_ATTACKS  # Byzantine clients that still run the honest client code
    out = []
    for u in updates:
        row = u.vector
        honest_code = u.client not in ctx.byzantine or follows
        if honest_code and clip:
            row, _ = clip_update(row, c)
        claim = claim_for(row, unit_ref) if unit_ref is not None else None
        if honest_code and noise:
            size = group_sizes[u.client]
            row = add_distributed_noise(row, sigma, c, size, noise_quorum(cfg.noise_quorum_pct, size),
                                        seed=derive_seed(ctx.seed, "noise", number, u.client))
        out.append(Submission(u.client, np.asarray(row, dtype=np.float32), claim, u.num_examples,
                              declared if noise else u.mechanism))
    return out
