"""Reputation params: defaults, validation, the genesis section that sets them and the governance setter."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, cast

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.reputation import keys
from fedledger.abci_app.modules.reputation.math import MAX_HALF_LIFE, SCALE
from fedledger.abci_app.modules.reputation.records import ReputationParams
from fedledger.abci_app.records import load_record, store_record

__all__ = [
    "DEFAULT_PARAMS",
    "MAX_VALUE",
    "PENALTY_REASONS",
    "WEIGHT_NAMES",
    "init_genesis",
    "params",
    "set_params",
    "validate_params",
]

MAX_VALUE = 10**15  # bound on every score and weight (micro-units); below 2^53 so JSON clients read it exactly

# Rejection reasons a contribution can be penalised for; each is also the name of its weight.
PENALTY_REASONS: tuple[str, ...] = ("hash_mismatch", "probe_failed", "robust_flagged")
# Every weight, as a non-negative magnitude in micro-units; the hook decides the sign.
WEIGHT_NAMES: tuple[str, ...] = ("contribution_accepted", *PENALTY_REASONS, "version_promoted",
                                 "version_quarantined")

DEFAULT_PARAMS: ReputationParams = {
    "floor": 0,
    "cap": 10 * SCALE,
    "initial": 1 * SCALE,
    "half_life_blocks": 10_000,
    "weights": {
        "contribution_accepted": SCALE // 10,  # +0.1 per accepted contribution
        "hash_mismatch": SCALE,  # -1.0: the payload is not what was committed (cheating or broken)
        "probe_failed": SCALE // 2,  # -0.5: failed a validation probe
        "robust_flagged": SCALE // 2,  # -0.5: flagged as an outlier by robust aggregation
        "version_promoted": SCALE // 20,  # +0.05 to each contributor of a promoted version
        "version_quarantined": SCALE // 20,  # -0.05 to each contributor of a quarantined version
    },
}
_FIELDS = ("floor", "cap", "initial", "half_life_blocks", "weights")


def _bad(log: str) -> TxError:
    return TxError(Code.REPUTATION_PARAMS_INVALID, log)


def _integer(value: Any, what: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise _bad(f"reputation {what} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def validate_params(new: Mapping[str, Any], base: ReputationParams | None = None) -> ReputationParams:
    """Merge `new` (all fields optional, weights too) over `base` (default DEFAULT_PARAMS) and validate.

    Returns the complete params object. Raises TxError(REPUTATION_PARAMS_INVALID) saying what is
    wrong: unknown fields, non-integers, 0 <= floor < cap <= MAX_VALUE, floor <= initial <= cap,
    1 <= half_life_blocks <= MAX_HALF_LIFE, 0 <= weight <= MAX_VALUE.
    """
    if not isinstance(new, Mapping):
        raise _bad(f"reputation params must be an object, got {type(new).__name__}")
    unknown = sorted(set(new) - set(_FIELDS))
    if unknown:
        raise _bad(f"reputation params have unknown fields {unknown}; known: {list(_FIELDS)}")
    # A copy to merge the unvalidated changes into: until checked below its values are anything.
    merged: dict[str, Any] = copy.deepcopy(dict(base if base is not None else DEFAULT_PARAMS))
    weights_in = new.get("weights", {})
    if not isinstance(weights_in, Mapping):
        raise _bad("reputation weights must be an object of integer weights")
    unknown = sorted(set(weights_in) - set(WEIGHT_NAMES))
    if unknown:
        raise _bad(f"reputation weights have unknown names {unknown}; known: {sorted(WEIGHT_NAMES)}")
    for name in ("floor", "cap", "initial", "half_life_blocks"):
        if name in new:
            merged[name] = new[name]
    merged["weights"] = {**merged["weights"], **weights_in}
    floor = _integer(merged["floor"], "floor", 0, MAX_VALUE - 1)
    cap = _integer(merged["cap"], "cap", floor + 1, MAX_VALUE)
    _integer(merged["initial"], "initial", floor, cap)
    _integer(merged["half_life_blocks"], "half_life_blocks", 1, MAX_HALF_LIFE)
    for name in WEIGHT_NAMES:
        _integer(merged["weights"].get(name), f"weight {name}", 0, MAX_VALUE)
    return {"floor": merged["floor"], "cap": merged["cap"], "initial": merged["initial"],
            "half_life_blocks": merged["half_life_blocks"],
            "weights": {name: merged["weights"][name] for name in sorted(WEIGHT_NAMES)}}


def params(view: Reader) -> ReputationParams:
    """The chain's reputation params (stored at genesis; the defaults if a store predates this module)."""
    stored = load_record(view, keys.PARAMS_KEY)
    return cast(ReputationParams, stored) if stored is not None else validate_params({})


def set_params(state: Writer, new: Mapping[str, Any]) -> ReputationParams:
    """Validate `new` merged over the current params and store the result; returns it.

    Validation comes before the write, so a refused change writes nothing. A governance handler
    should call `validate_params(new, params(view))` in its check phase and this in its write phase.
    Changing floor, cap or half-life applies from the next read on, also to the decay still pending
    on every stored score (decay is computed lazily with the params in force when it is read).
    """
    merged = validate_params(new, params(state))
    store_record(state, keys.PARAMS_KEY, merged)
    return merged


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    """Store the params of the genesis section `"reputation"` (absent fields take their defaults)."""
    try:
        merged = validate_params(section)
    except TxError as exc:
        raise ValueError(f"genesis: {exc.log}") from exc
    store_record(state, keys.PARAMS_KEY, merged)
