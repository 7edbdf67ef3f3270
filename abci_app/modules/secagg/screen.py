"""The input screen as consensus applies it: which trainers' claims let them into a secure round's roster.

Every trainer of a screened task (aggregation.screen) advertises, with its SecAgg keys, two claims
about the clipped, un-noised update it will mask: its projection on the round's unit reference
and its L2 norm, in millionths (`fedledger.node.aggregation.screen` explains where they come
from and what they cannot prove). When the round moves from keys to shares, the chain keeps on
the roster only the trainers whose claims pass:

    norm_ppm ≤ max_norm (in ppm), norm_ppm > 0, and projection_ppm · 10^6 ≥ min_cosine_ppm · norm_ppm

Integers only, so every validator decides the same. A screened trainer never joins the SecAgg
graph: nobody shares with it and nothing of it is ever unmasked, so leaving it out costs the
protocol nothing (unlike a dropout, whose masks would have to be recovered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.fields import int_field, require_fields
from fedledger.abci_app.modules.secagg.records import ScreenClaims

__all__ = ["MAX_CLAIM_PPM", "PPM", "decimal_ppm", "parse_claim", "screen_reason"]

PPM = 1_000_000
MAX_CLAIM_PPM = 10**12  # keeps records small; any real update (norm under a million) fits


def parse_claim(raw: Any) -> ScreenClaims:
    """Validate `screen` claims: {projection_ppm, norm_ppm}, integers, |projection| ≤ norm (+1 for rounding)."""
    if not isinstance(raw, dict):
        raise TxError(Code.INVALID_BODY, "screen must be an object: projection_ppm, norm_ppm")
    require_fields(raw, {"projection_ppm", "norm_ppm"}, what="screen")
    norm = int_field(raw, "norm_ppm", 0, MAX_CLAIM_PPM)
    projection = int_field(raw, "projection_ppm", -MAX_CLAIM_PPM, MAX_CLAIM_PPM)
    if abs(projection) > norm + 1:  # each claim is rounded on its own; Cauchy-Schwarz bounds it otherwise
        raise TxError(Code.INVALID_BODY, f"screen.projection_ppm {projection} exceeds norm_ppm {norm}: the "
                                         "projection on a unit vector is at most the norm")
    return {"projection_ppm": projection, "norm_ppm": norm}


def decimal_ppm(text: str) -> int:
    """A plain decimal string with at most 6 places (as the aggregation policy stores it) in exact ppm."""
    whole, _, frac = text.partition(".")
    return int(whole) * PPM + int(frac.ljust(6, "0")[:6] or "0")


def screen_reason(claim: Mapping[str, int], policy: Mapping[str, Any]) -> str | None:
    """Why the screen refuses these claims under the task's screen policy, or None if they pass."""
    norm, projection = int(claim["norm_ppm"]), int(claim["projection_ppm"])
    if norm > decimal_ppm(str(policy["max_norm"])):
        return "norm_above_max"
    if norm == 0:
        return "zero_update"
    if projection * PPM < int(policy["min_cosine_ppm"]) * norm:
        return "cosine_below_min"
    return None
