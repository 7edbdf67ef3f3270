"""The governance genesis section: voting period, quorum, threshold, weights and who runs each genesis validator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedledger.abci_app.context import Writer
from fedledger.abci_app.errors import TxError
from fedledger.abci_app.modules.governance import keys
from fedledger.abci_app.modules.governance.params import parse_params, store_params
from fedledger.abci_app.modules.governance.validators import GENESIS_ORGS_KEY, parse_pub_key
from fedledger.abci_app.modules.identity.keeper import org_exists
from fedledger.abci_app.records import store_record

__all__ = ["init_genesis"]


def init_genesis(state: Writer, section: Mapping[str, Any]) -> None:
    """Store the parameters (defaults for what the section leaves out) and start proposal ids at 1.

    Runs after the identity module's genesis (module order), so a weight naming an organization
    that genesis does not register is refused: a misspelt id would otherwise silently vote with
    the default weight.
    """
    owners = section.get("validator_organizations", {})
    params = parse_params({k: v for k, v in section.items() if k != "validator_organizations"})
    _stash_owners(state, owners)
    missing = [org for org in params["weights"] if not org_exists(state, org)]
    if missing:
        raise ValueError(f"governance weights name organizations that the identity genesis does not register: "
                         f"{missing}")
    store_params(state, params)
    state.set(keys.NEXT_ID_KEY, b"1")


def _stash_owners(state: Writer, owners: object) -> None:
    """Check `validator_organizations` ({base64 pub_key: organization id}) and keep it for init_validators.

    InitChain's validators name only keys and powers; this says which organization runs each, so
    `remove_validator` with `remove_organization` works for them too. The record is read and
    deleted by init_validators in the same genesis, after every module's section.
    """
    if not isinstance(owners, Mapping):
        raise ValueError("governance validator_organizations must be an object {base64 pub_key: organization}")
    for key in sorted(owners):
        try:
            parse_pub_key(key, "validator_organizations key")
        except TxError as exc:
            raise ValueError(exc.log) from exc
        if not isinstance(owners[key], str) or not org_exists(state, owners[key]):
            raise ValueError(f"governance validator_organizations: {owners[key]!r} (for {key}) is not an "
                             "organization the identity genesis registers")
    if owners:
        store_record(state, GENESIS_ORGS_KEY, {k: owners[k] for k in sorted(owners)})
