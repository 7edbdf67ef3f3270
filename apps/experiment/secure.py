"""One SecAgg+ round over flattened updates, group by group, as the real secure round runs it.

Groups and their contexts come from the round seed exactly as `fedledger.sdk.secure_plan`
derives them (same partition, per-group context, quantizer sized for the group, threshold 60% of
the neighbour degree), and each group runs the library's in-memory `simulate_round`. As in the
aggregator's `check_masked_inputs`, a group left with fewer than two inputs is not unmasked (its
sum would reveal the input), and a group whose recovery fails is skipped, not the whole round.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fedledger.sdk.secagg import SecAggError, default_degree, group_context, partition, simulate_round

__all__ = ["THRESHOLD_PCT", "SecureRound", "noise_quorum", "secure_round"]

THRESHOLD_PCT = 60  # the chain's default aggregation.secure.threshold_pct


def noise_quorum(pct: int, size: int) -> int:
    """m = ceil(pct·size/100): the inputs a group's distributed noise is sized for (0 when pct is 0)."""
    return -(-pct * size // 100)


@dataclass
class SecureRound:
    """Per-group means of the survivors' inputs, who is in each used group, and what every client posted."""

    means: list[npt.NDArray[np.float32]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    survivors: list[list[int]] = field(default_factory=list)  # row indices whose input is in each used group
    sizes: list[int] = field(default_factory=list)  # members (survivors or not) of each used group
    bytes_sent: dict[int, int] = field(default_factory=dict)  # row index -> bytes over the round's stages
    masked_bytes: dict[int, int] = field(default_factory=dict)  # row index -> bytes of its masked input
    shares_bytes: dict[int, int] = field(default_factory=dict)  # row index -> bytes of its encrypted shares
    failed_groups: dict[int, str] = field(default_factory=dict)


def secure_round(rows: npt.NDArray[np.float32], clip: float, seed: bytes, group_size: int,
                 dropped: Collection[int] = (), quorum_pct: int = 0, silent: Collection[int] = ()) -> SecureRound:
    """Run SecAgg+ over rows (N, d) in groups of about group_size; `dropped` rows share keys but never send input.

    `silent` rows advertised keys but never joined the roster (the chain's input screen left them
    out): nobody shares with them, and they need no recovery.

    A group whose inputs left fall below `noise_quorum(quorum_pct, size)` is not unmasked either:
    its distributed noise would be short of what the DP guarantee counts on.
    """
    quiet = set(silent)
    gone = set(dropped) | quiet
    out = SecureRound()
    for number, members in enumerate(partition(list(range(rows.shape[0])), seed, group_size)):
        alive = [m for m in members if m not in gone]
        if len(alive) < 2:
            out.failed_groups[number] = f"{len(alive)} input(s) left; unmasking would reveal them"
            continue
        if len(alive) < noise_quorum(quorum_pct, len(members)):
            out.failed_groups[number] = (f"{len(alive)} of {len(members)} inputs left, under the noise quorum of "
                                         f"{noise_quorum(quorum_pct, len(members))}")
            continue
        threshold = max(1, math.ceil(default_degree(len(members)) * THRESHOLD_PCT / 100))
        try:
            result = simulate_round(rows[list(members)], clip, group_context(seed, number),
                                    sorted((gone - quiet).intersection(members)), threshold=threshold,
                                    members=members, silent=sorted(quiet.intersection(members)))
        except SecAggError as exc:
            out.failed_groups[number] = str(exc)
            continue
        out.means.append(np.asarray(result.mean, dtype=np.float32))
        out.counts.append(int(result.aggregate.count))
        out.survivors.append(alive)
        out.sizes.append(len(members))
        for m in members:
            out.bytes_sent[m] = result.bytes_sent(m)
            out.shares_bytes[m] = result.message_bytes["shares"].get(m, 0)
            if m in result.message_bytes["masked_input"]:
                out.masked_bytes[m] = result.message_bytes["masked_input"][m]
    return out
