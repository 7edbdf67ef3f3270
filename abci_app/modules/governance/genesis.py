"""The governance genesis section: voting period, quorum, threshold and organization weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.context import Writer
from fedledger.abci_app.modules.governance import keys
from fedledger.abci_app.modules.governance.params import parse_params, store_params
from fedledger.abci_app.modules.identity.keeper import org_exists

__all__ = ["init_genesis"]


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    """Store the parameters (defaults for what the section leaves out) and start proposal ids at 1.

    Runs after the identity module's genesis (module order), so a weight naming an organization
    that genesis does not register is refused: a misspelt id would otherwise silently vote with
    the default weight.
    """
    params = parse_params(section)
    missing = [org for org in params["weights"] if not org_exists(state, org)]
    if missing:
        raise ValueError(f"governance weights name organizations that the identity genesis does not register: "
                         f"{missing}")
    store_params(state, params)
    state.set(keys.NEXT_ID_KEY, b"1")
