"""Governance parameters: voting period, quorum, threshold and organization weights, with their defaults."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.modules.governance import keys
from fedledger.abci_app.modules.governance.records import GovParams
from fedledger.abci_app.modules.identity.keeper import org_ids
from fedledger.abci_app.records import load_record, store_record

__all__ = ["DEFAULTS", "DEFAULT_WEIGHT", "MAX_PERIOD", "MAX_WEIGHT", "PPM", "effective_weights", "load_params",
           "parse_params", "store_params"]

PPM = 1_000_000
DEFAULT_WEIGHT = 1  # an organization absent from `weights` votes with this weight
MAX_WEIGHT = 1_000_000
MAX_PERIOD = 1_000_000
DEFAULTS: GovParams = {
    "voting_period_blocks": 20,
    "quorum_ppm": 500_000,  # at least half of all weight must vote (yes, no or abstain)
    "threshold_ppm": 500_000,  # yes must be strictly more than half of the yes + no weight
    "weights": {},
}
_ORG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FIELDS = frozenset(DEFAULTS)


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"governance {name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def parse_params(changes: Mapping[str, Any], base: GovParams = DEFAULTS) -> GovParams:
    """`base` with `changes` applied and checked; ValueError says what is wrong.

    `weights` in `changes` is merged organization by organization into the base weights, so a
    change names only the organizations whose weight moves.
    """
    unknown = set(changes) - _FIELDS
    if unknown:
        raise ValueError(f"unknown governance parameters {sorted(unknown)}; known: {sorted(_FIELDS)}")
    out = {name: changes.get(name, base[name]) for name in ("voting_period_blocks", "quorum_ppm", "threshold_ppm")}
    _int(out["voting_period_blocks"], "voting_period_blocks", 1, MAX_PERIOD)
    _int(out["quorum_ppm"], "quorum_ppm", 0, PPM)
    # A threshold of 100% could never be exceeded, so governance could not even lower it again.
    _int(out["threshold_ppm"], "threshold_ppm", 0, PPM - 1)
    weights = dict(base["weights"])
    new = changes.get("weights", {})
    if not isinstance(new, Mapping):
        raise ValueError("governance weights must be an object {organization: integer weight}")
    for org in sorted(new):
        if not isinstance(org, str) or not _ORG_RE.match(org):
            raise ValueError(f"governance weights: {org!r} is not an organization id")
        weights[org] = _int(new[org], f"weight of {org!r}", 0, MAX_WEIGHT)
    out["weights"] = {org: weights[org] for org in sorted(weights)}
    return cast(GovParams, out)


def load_params(view: Reader) -> GovParams:
    """The chain's governance parameters (the defaults on a chain whose genesis predates governance)."""
    rec = load_record(view, keys.PARAMS_KEY)
    return cast(GovParams, rec) if rec is not None else parse_params({})


def store_params(state: Writer, params: GovParams) -> None:
    """Write validated parameters."""
    store_record(state, keys.PARAMS_KEY, params)


def effective_weights(view: Reader, params: Mapping[str, Any]) -> list[tuple[str, int]]:
    """(organization, weight) for every organization registered now, sorted by id.

    Weights of organizations that no longer exist are ignored; registered organizations without
    an explicit weight get DEFAULT_WEIGHT.
    """
    return [(org, params["weights"].get(org, DEFAULT_WEIGHT)) for org in org_ids(view)]
