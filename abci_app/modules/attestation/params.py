"""Attestation params: how long a verified SEV-SNP report counts before its node must attest again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from fedledger.abci_app.context import Reader, Writer
from fedledger.abci_app.errors import TxError
from fedledger.abci_app.modules.attestation import keys
from fedledger.abci_app.modules.attestation.records import AttestationParams
from fedledger.abci_app.modules.fields import int_params
from fedledger.abci_app.records import load_record, store_record

__all__ = ["BUILTIN_DEFAULTS", "init_genesis", "params"]

BUILTIN_DEFAULTS: AttestationParams = {"ttl": 7 * 24 * 3600}  # a week: the report carries no time of its own
_RANGES = {"ttl": (60, 366 * 24 * 3600)}


def params(view: Reader) -> AttestationParams:
    """The chain's attestation params."""
    rec = load_record(view, keys.PARAMS_KEY)
    return cast(AttestationParams, rec) if rec is not None else dict(BUILTIN_DEFAULTS)  # type: ignore[return-value]


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    """Store genesis overrides ({"ttl": seconds}); an empty section stores nothing (a bad one raises ValueError)."""
    if not section:
        return
    try:
        changes = int_params(section, _RANGES, "attestation")
    except TxError as exc:
        raise ValueError(f"attestation genesis: {exc.log}") from exc
    store_record(state, keys.PARAMS_KEY, {**params(state), **changes})
