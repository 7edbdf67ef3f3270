"""Lifecycle params (quorum weight and probe thresholds): chain defaults from genesis, per-task overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.modules.federation.keeper import task_exists
from fedledger.abci_app.modules.fields import int_params
from fedledger.abci_app.modules.lifecycle import keys
from fedledger.abci_app.records import load_record, store_record

__all__ = [
    "BUILTIN_DEFAULTS",
    "MAX_QUORUM_WEIGHT",
    "PARAM_NAMES",
    "PPM",
    "check_task_params",
    "chain_defaults",
    "init_genesis",
    "parse_params",
    "store_task_params",
    "task_params",
]

PPM = 1_000_000
# Weights are evaluators' reputation scores (integer micro-units, see weight.py); the bound only
# keeps arithmetic and records small.
MAX_QUORUM_WEIGHT = 10**15
BUILTIN_DEFAULTS: dict[str, int] = {
    "quorum_weight": 2 * PPM,  # two evaluators of initial reputation (1.0 = 1_000_000) decide a version
    "min_canary_accuracy_ppm": 500_000,  # the weighted median canary accuracy must be at least 50%
    "max_backdoor_asr_ppm": 200_000,  # at most 20% of triggered non-target canaries may flip to the target
    # A version may score at most this far below the canary accuracy the last good version was
    # promoted with (1.0: no regression check). It needs no knowledge of any attack.
    "max_regression_ppm": PPM,
}
PARAM_NAMES = tuple(sorted(BUILTIN_DEFAULTS))
_RANGES: dict[str, tuple[int, int]] = {
    "quorum_weight": (1, MAX_QUORUM_WEIGHT),
    "min_canary_accuracy_ppm": (0, PPM),
    "max_backdoor_asr_ppm": (0, PPM),
    "max_regression_ppm": (0, PPM),
}


def parse_params(body: Any, *, partial: bool = True) -> dict[str, int]:
    """Validate lifecycle params (statelessly); TxError(INVALID_BODY) says which field is wrong.

    partial=True accepts any non-empty subset of PARAM_NAMES (a change); partial=False needs all.
    """
    return int_params(body, _RANGES, "lifecycle", partial=partial)


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    """Write the chain's default lifecycle params: the built-in defaults overridden by the genesis section.

    The section is flat, e.g. {"quorum_weight": 3, "max_backdoor_asr_ppm": 100000}; an empty or
    absent section keeps the built-in defaults. A bad section raises ValueError (the chain refuses
    to start rather than run with params nobody chose).
    """
    try:
        changes = parse_params(section) if section else {}
    except TxError as exc:
        raise ValueError(f"genesis section 'lifecycle': {exc.log}") from exc
    store_record(state, keys.DEFAULTS_KEY, {**BUILTIN_DEFAULTS, **changes})


def chain_defaults(view: Reader) -> dict[str, int]:
    """The chain's default lifecycle params (genesis), or the built-in ones for a state without them."""
    rec = load_record(view, keys.DEFAULTS_KEY)
    return {**BUILTIN_DEFAULTS, **(rec or {})}


def task_params(view: Reader, task_id: str) -> dict[str, int]:
    """The lifecycle params in force for a task: its own if governance set them, else the chain defaults."""
    rec = load_record(view, keys.params_key(task_id))
    return {**chain_defaults(view), **(rec or {})}


def check_task_params(view: Reader, task_id: str, changes: Mapping[str, Any]) -> dict[str, int]:
    """Validate a change of a task's params against state; return the full params record it would write.

    Raises TxError: NOT_FOUND for an unknown task, INVALID_BODY for bad params. Reads only.
    """
    if not task_exists(view, task_id):
        raise TxError(Code.NOT_FOUND, f"task {task_id!r} does not exist")
    return {**task_params(view, task_id), **parse_params(changes)}


def store_task_params(state: Writer, task_id: str, params: Mapping[str, int]) -> None:
    """Write a task's full params record (already checked by check_task_params)."""
    store_record(state, keys.params_key(task_id), dict(params))
