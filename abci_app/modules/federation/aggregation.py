"""A task's aggregation policy: the robust rule, the assumed Byzantine count, and secure-aggregation settings.

The chain validates and stores the policy; it never runs the arithmetic. The aggregator node reads
it from the task record and applies the pure libraries in `fedledger.node.robust` and
`fedledger.node.secagg`. Anyone can recompute a published aggregate from the same record
(`fedledger aggregator verify`), so the policy is part of what makes a version checkable.

Numbers here are integers or plain decimal strings, never floats, as consensus code requires.
"""

from __future__ import annotations

import re
from typing import Any

from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.federation.records import (
    AggregationPolicy,
    CentralNoise,
    Compression,
    ScreenPolicy,
    SecurePolicy,
    TaskRecord,
)
from fedledger.abci_app.modules.fields import int_field, require_fields

__all__ = [
    "DEFAULT_POLICY", "ROBUST_RULES", "aggregation_of", "is_screened", "is_secure", "parse_aggregation",
    "positive_decimal",
]

# The on-chain names of the rules the aggregator implements (fedledger.node.robust + fedavg).
ROBUST_RULES = ("fedavg", "median", "trimmed_mean", "krum", "multi_krum", "bulyan", "geomed", "centered_clipping")
DEFAULT_POLICY: AggregationPolicy = {"rule": "fedavg", "byzantine": 0, "secure": None}
_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,6})?$")


def _parse_secure(raw: Any, round_size: int) -> SecurePolicy:
    if not isinstance(raw, dict):
        raise TxError(Code.INVALID_BODY, "aggregation.secure must be an object: group_size, clip, threshold_pct, "
                                         "stage_blocks")
    require_fields(raw, {"group_size", "clip"}, {"threshold_pct", "stage_blocks", "noise_multiplier", "sparse_ppm",
                                                 "noise_quorum_pct"}, what="aggregation.secure")
    noise = raw.get("noise_multiplier")
    if noise is not None:
        positive_decimal(noise, "secure.noise_multiplier",
                         " (distributed DP: each client adds its share of this noise before masking)")
    clip = positive_decimal(raw["clip"], "secure.clip", " such as '1.0' (the bound on every coordinate of an update)")
    return {
        "group_size": int_field(raw, "group_size", 2, max(2, round_size)),
        "clip": clip,
        # Each client's secrets are shared among its neighbours; this share of them must survive.
        "threshold_pct": int_field(raw, "threshold_pct", 50, 100) if "threshold_pct" in raw else 60,
        "stage_blocks": int_field(raw, "stage_blocks", 1, 100_000) if "stage_blocks" in raw else 20,
        # None: clients train with DP-SGD (example-level DP, declared per contribution). A value:
        # update-level distributed DP, clip to `clip` in L2 and add a 1/g share of N(0, (σ·clip)²).
        "noise_multiplier": noise,
        # Shared-coordinate sparsification: every client sends the same ⌈ppm·d/10^6⌉ coordinates,
        # drawn from the round seed, so pairwise masks still cancel. None: dense.
        "sparse_ppm": int_field(raw, "sparse_ppm", 1, 1_000_000) if raw.get("sparse_ppm") is not None else None,
        # Distributed noise is sized for this share of a group's members: each adds a 1/m share with
        # m = ceil(pct·g/100), so a group sum of at least m honest inputs carries the full noise even
        # when dropouts and screened inputs are left out; a group with fewer is never unmasked.
        "noise_quorum_pct": int_field(raw, "noise_quorum_pct", 1, 100) if "noise_quorum_pct" in raw else 100,
    }


def _parse_screen(raw: Any) -> ScreenPolicy:
    """{min_cosine_ppm, max_norm}: the input screen every contribution's claims must pass (see node/screen)."""
    if not isinstance(raw, dict):
        raise TxError(Code.INVALID_BODY, "aggregation.screen must be an object: min_cosine_ppm, max_norm")
    require_fields(raw, {"min_cosine_ppm", "max_norm"}, what="aggregation.screen")
    return {"min_cosine_ppm": int_field(raw, "min_cosine_ppm", -1_000_000, 1_000_000),
            "max_norm": positive_decimal(raw["max_norm"], "screen.max_norm",
                                         " (the largest L2 norm a screened input may claim)")}


def parse_aggregation(raw: Any, round_size: int) -> AggregationPolicy:
    """Validate a task's `aggregation` object; absent fields take the defaults (plain FedAvg, no SecAgg)."""
    if raw is None:
        return DEFAULT_POLICY.copy()
    if not isinstance(raw, dict):
        raise TxError(Code.INVALID_BODY, "aggregation must be an object: rule, byzantine, secure")
    require_fields(raw, {"rule"}, {"byzantine", "secure", "compression", "central_noise", "screen"},
                   what="aggregation")
    rule = raw["rule"]
    if rule not in ROBUST_RULES:
        raise TxError(Code.INVALID_BODY, f"aggregation.rule must be one of {list(ROBUST_RULES)}")
    byzantine = int_field(raw, "byzantine", 0, round_size) if "byzantine" in raw else 0
    secure = _parse_secure(raw["secure"], round_size) if raw.get("secure") is not None else None
    if secure is not None and rule != "fedavg" and round_size // secure["group_size"] < 3:
        raise TxError(Code.INVALID_BODY, f"a robust rule across secure groups needs at least 3 groups; round_size "
                                         f"{round_size} with group_size {secure['group_size']} gives "
                                         f"{round_size // secure['group_size']}")
    compression = _parse_compression(raw.get("compression"))
    if compression is not None and secure is not None:
        raise TxError(Code.INVALID_BODY, "aggregation.compression applies to plaintext rounds; secure rounds are "
                                         "already quantized into the SecAgg field")
    out: AggregationPolicy = {"rule": rule, "byzantine": byzantine, "secure": secure}
    if raw.get("screen") is not None:
        if secure is None:
            raise TxError(Code.INVALID_BODY, "aggregation.screen needs aggregation.secure: a plaintext round's "
                                             "robust rule sees every update already")
        out["screen"] = _parse_screen(raw["screen"])
    if compression is not None:
        out["compression"] = compression
    if raw.get("central_noise") is not None:
        if secure is not None or rule != "fedavg":
            raise TxError(Code.INVALID_BODY, "aggregation.central_noise is for plaintext fedavg rounds; under "
                                             "SecAgg use secure.noise_multiplier (distributed noise)")
        out["central_noise"] = _parse_central(raw["central_noise"])
    return out


def _parse_central(raw: Any) -> CentralNoise:
    """{noise_multiplier, clip}: the aggregator clips each update to clip and adds N(0, (σ·clip)²) to the sum."""
    if not isinstance(raw, dict):
        raise TxError(Code.INVALID_BODY, "aggregation.central_noise must be {noise_multiplier, clip}")
    require_fields(raw, {"noise_multiplier", "clip"}, {"adaptive"}, what="aggregation.central_noise")
    out: CentralNoise = {
        "noise_multiplier": positive_decimal(raw["noise_multiplier"], "central_noise.noise_multiplier"),
        "clip": positive_decimal(raw["clip"], "central_noise.clip"),
    }
    adaptive = raw.get("adaptive")
    if adaptive is not None:
        # Andrew et al. 2021: the clip follows a target quantile of the update norms, estimated from
        # noised "norm ≤ clip" bits; `clip` above is then the starting value, moved each round.
        if not isinstance(adaptive, dict):
            raise TxError(Code.INVALID_BODY, "central_noise.adaptive must be {target_quantile, learning_rate, "
                                             "bit_noise}")
        require_fields(adaptive, {"target_quantile", "learning_rate", "bit_noise"}, what="central_noise.adaptive")
        values = {k: positive_decimal(adaptive[k], f"central_noise.adaptive.{k}")
                  for k in ("target_quantile", "learning_rate", "bit_noise")}
        out["adaptive"] = {"target_quantile": values["target_quantile"], "learning_rate": values["learning_rate"],
                           "bit_noise": values["bit_noise"]}
        if not _micro(out["adaptive"]["target_quantile"]) < _MICRO:
            raise TxError(Code.INVALID_BODY, "central_noise.adaptive.target_quantile must lie strictly in (0, 1)")
        if not 2 * _micro(out["adaptive"]["bit_noise"]) > _micro(out["noise_multiplier"]):
            # z_Δ = (z^-2 − (2σ_b)^-2)^(-1/2) exists only then: the bits may not cost more than the round.
            raise TxError(Code.INVALID_BODY, "central_noise.adaptive.bit_noise must exceed half the noise_multiplier")
    return out


def positive_decimal(value: Any, name: str, hint: str = "") -> str:
    """`value` if it is a positive plain decimal string (the chain stores numbers as text, never floats)."""
    if not isinstance(value, str) or not _DECIMAL_RE.match(value) or _micro(value) == 0:
        raise TxError(Code.INVALID_BODY, f"aggregation.{name} must be a positive plain decimal string{hint}")
    return value


_MICRO = 10**6


def _micro(value: str) -> int:
    """A decimal string matching _DECIMAL_RE (at most 6 places) as exact integer micro-units: no floats or
    decimal contexts in the comparisons consensus makes."""
    whole, _, frac = value.partition(".")
    return int(whole) * _MICRO + int(frac.ljust(6, "0"))


def _parse_compression(raw: Any) -> Compression | None:
    """None, {"method": "quant8"} or {"method": "topk", "fraction_ppm": 1..1_000_000}."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("method") not in ("quant8", "topk"):
        raise TxError(Code.INVALID_BODY, "aggregation.compression must be {method: quant8} or "
                                         "{method: topk, fraction_ppm: N}")
    if raw["method"] == "quant8":
        require_fields(raw, {"method"}, what="aggregation.compression")
        return {"method": "quant8"}
    require_fields(raw, {"method", "fraction_ppm"}, what="aggregation.compression")
    return {"method": "topk", "fraction_ppm": int_field(raw, "fraction_ppm", 1, 1_000_000)}


def aggregation_of(task: TaskRecord) -> AggregationPolicy:
    """The task's aggregation policy; older task records carry none and aggregate with DEFAULT_POLICY."""
    return task.get("aggregation") or DEFAULT_POLICY


def is_secure(task: TaskRecord) -> bool:
    """True if the task's rounds run SecAgg+ over the chain (older task records have no policy: plaintext)."""
    return aggregation_of(task).get("secure") is not None


def is_screened(task: TaskRecord) -> bool:
    """True if the task screens every input by its claims (aggregation.screen): commits must carry them."""
    return aggregation_of(task).get("screen") is not None
