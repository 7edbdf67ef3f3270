"""The input screen: per-client robustness under secure aggregation, from two claimed numbers per input.

Secure aggregation hides every input, so no robust rule can look at one. What a screen needs of
an input is much less than the input: its L2 norm and its direction relative to an update the
defender trusts. Each round the aggregator trains the round's base model for one local pass on
its own clean root data (the evaluators' canary set, as FLTrust's root data; Cao et al. 2021)
and publishes that root update r as the round's *reference* (its CID is on chain, in the round
record). Every trainer posts, with its SecAgg keys, two claims about the clipped, un-noised
update u it will mask: ``projection_ppm`` = ⟨u, r/‖r‖⟩ and ``norm_ppm`` = ‖u‖, in millionths.

The screen keeps an input iff its claimed norm is at most the task's ``max_norm`` (the clip: an
update no honest client could send is out) and its claimed cosine projection/norm is at least
``min_cosine_ppm`` (an input that points away from the root update is out). The chain applies
it itself (`fedledger.abci_app.modules.secagg.screen`, integers only) when the round moves from
keys to shares: screened trainers are left off the roster, so they never join the SecAgg graph
and nothing of theirs is ever unmasked, and each loses reputation as a robust-flagged input does,
so a trainer screened out twice is hardly ever selected again.

Claims are only claims. A group's unmasked sum checks them (``claims_consistent``): the sum of
the kept members' projection claims must equal ⟨group sum, r̂⟩ up to the distributed-DP noise
the members added and the quantization error. A lone liar in a noiseless group is caught exactly;
under DP noise the check tolerates a lie of about four noise deviations in total per group. What
the screen cannot check is a norm claim, which is quadratic: an attacker that lies about its norm
but not its projection passes. That, and an attacker that shapes its update to the published
reference, are the limits documented in docs/DEFENSE.md.

What the aggregator learns beyond the sum is these two numbers per client, never the update.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedledger.abci_app.modules.secagg.screen import PPM, decimal_ppm
from fedledger.abci_app.modules.secagg.screen import screen_reason as chain_screen_reason
from fedledger.node.aggregation.fedavg import AggregationError

__all__ = ["PPM", "Claim", "ScreenPolicy", "claim_for", "claims_consistent", "screen_reason",
           "unit_reference"]


@dataclass(frozen=True)
class Claim:
    """What a trainer claims of the input it masked: projection on the unit reference and L2 norm, in ppm."""

    projection_ppm: int
    norm_ppm: int

    def to_json(self) -> dict[str, int]:
        """The commit tx's `screen` field."""
        return {"projection_ppm": self.projection_ppm, "norm_ppm": self.norm_ppm}

    @staticmethod
    def from_json(raw: Mapping[str, int]) -> Claim:
        """From a contribution record's `screen` field (validated by the chain)."""
        return Claim(int(raw["projection_ppm"]), int(raw["norm_ppm"]))


@dataclass(frozen=True)
class ScreenPolicy:
    """A task's screen (aggregation.screen): the least cosine and the largest norm an input may claim."""

    min_cosine_ppm: int
    max_norm_ppm: int

    @staticmethod
    def from_task(policy: Mapping[str, object]) -> ScreenPolicy | None:
        """The screen of a task's aggregation policy, or None when the task screens nothing."""
        raw = policy.get("screen")
        if not isinstance(raw, Mapping):
            return None
        return ScreenPolicy(int(raw["min_cosine_ppm"]), decimal_ppm(str(raw["max_norm"])))

    def to_json(self) -> dict[str, object]:
        """The aggregation.screen record this policy stands for (max_norm as a ppm-exact decimal)."""
        return {"min_cosine_ppm": self.min_cosine_ppm, "max_norm": f"{self.max_norm_ppm // PPM}."
                                                                 f"{self.max_norm_ppm % PPM:06d}"}


def _ppm(value: float) -> int:
    """value in millionths, rounded half away from zero (the same on every machine for the same float)."""
    scaled = abs(value) * PPM
    out = int(math.floor(scaled + 0.5))
    return -out if value < 0 else out


def unit_reference(root_update: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """r/‖r‖ in float64; AggregationError for a zero or non-finite root update (it has no direction)."""
    r = np.asarray(root_update, dtype=np.float64).reshape(-1)
    norm = float(np.sqrt(np.dot(r, r)))
    if not math.isfinite(norm) or norm == 0.0:
        raise AggregationError("the root update is zero or not finite: it gives no reference direction")
    return np.asarray(r / norm, dtype=np.float64)


def claim_for(update: npt.NDArray[np.floating], unit_ref: npt.NDArray[np.float64]) -> Claim:
    """The claims of an update: ⟨u, r̂⟩ and ‖u‖ in ppm (float64 dot products in index order)."""
    u = np.asarray(update, dtype=np.float64).reshape(-1)
    if u.shape != unit_ref.shape:
        raise AggregationError(f"update has {u.size} coordinates, the reference {unit_ref.size}")
    if not np.all(np.isfinite(u)):
        raise AggregationError("update has non-finite coordinates")
    norm = _ppm(float(np.sqrt(np.dot(u, u))))
    projection = _ppm(float(np.dot(u, unit_ref)))
    # Rounding each on its own may put |projection| one unit over the norm; the chain allows that.
    return Claim(projection_ppm=projection, norm_ppm=norm)


def screen_reason(claim: Claim, policy: ScreenPolicy) -> str | None:
    """Why the screen refuses an input, or None if it passes: the chain's own rule (secagg/screen.py)."""
    return chain_screen_reason(claim.to_json(), policy.to_json())


def claims_consistent(claims: Sequence[Claim], group_sum: npt.NDArray[np.floating],
                      unit_ref: npt.NDArray[np.float64], noise_sd: float, quant_step: float,
                      z: float = 4.0) -> bool:
    """Do the kept members' projection claims add up to ⟨group sum, r̂⟩?

    Allowed gap: z standard deviations of the projected DP noise the members added (`noise_sd`,
    the sd of ⟨Σ noise shares, r̂⟩), plus the worst-case quantization error of every coordinate
    of every input (count · step/2 · ‖r̂‖₁), plus one ppm per claim for its rounding.
    """
    s = np.asarray(group_sum, dtype=np.float64).reshape(-1)
    if s.shape != unit_ref.shape:
        raise AggregationError(f"group sum has {s.size} coordinates, the reference {unit_ref.size}")
    measured = float(np.dot(s, unit_ref))
    claimed = sum(c.projection_ppm for c in claims) / PPM
    tolerance = z * noise_sd + len(claims) * (quant_step / 2.0) * float(np.abs(unit_ref).sum()) + len(claims) / PPM
    return abs(measured - claimed) <= tolerance
