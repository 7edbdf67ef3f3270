"""Inference params: what a dissent and a fraud cost, and when repeated dissent suspends a node.

The built-in defaults hold until genesis or governance (`set_inference_params`) sets them, so a
chain that never mentions inference stores nothing for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import TxError
from fedledger.abci_app.modules.fields import int_params
from fedledger.abci_app.modules.inference import keys
from fedledger.abci_app.modules.inference.records import InferenceParams
from fedledger.abci_app.records import load_record, store_record

__all__ = ["BUILTIN_DEFAULTS", "PARAM_NAMES", "init_genesis", "params", "parse_params", "store_params"]

BUILTIN_DEFAULTS: InferenceParams = {
    "dissent_penalty": 50_000,  # reputation micro-units a node loses per outvoted answer (0.05)
    "fraud_penalty": 500_000,  # per proven equivocation (0.5), which also suspends the node
    "max_dissents": 3,  # this many outvoted answers within dissent_window blocks suspend a node
    "dissent_window": 100,
}
PARAM_NAMES = tuple(sorted(BUILTIN_DEFAULTS))
_RANGES = {"dissent_penalty": (0, 10**12), "fraud_penalty": (0, 10**12), "max_dissents": (1, 10**6),
           "dissent_window": (1, 10**9)}


def parse_params(body: Any) -> dict[str, int]:
    """Validate a non-empty subset of PARAM_NAMES (statelessly); TxError(INVALID_BODY) names the bad field."""
    return int_params(body, _RANGES, "inference")


def params(view: Reader) -> InferenceParams:
    """The chain's current inference params."""
    rec = load_record(view, keys.PARAMS_KEY)
    return cast(InferenceParams, rec) if rec is not None else dict(BUILTIN_DEFAULTS)  # type: ignore[return-value]


def store_params(state: Writer, changes: Mapping[str, int]) -> InferenceParams:
    """Merge validated changes over the current params and store them; returns the result."""
    merged = cast(InferenceParams, {**params(state), **changes})
    store_record(state, keys.PARAMS_KEY, dict(merged))
    return merged


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    """Store genesis overrides of the defaults; an empty section stores nothing (a bad one raises ValueError)."""
    if not section:
        return
    try:
        store_params(state, parse_params(section))
    except TxError as exc:
        raise ValueError(f"inference genesis: {exc.log}") from exc
