"""The attestation module object: its tx route, queries and genesis section, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.attestation.handlers import HANDLERS
from fedledger.abci_app.modules.attestation.msgs import PARSERS
from fedledger.abci_app.modules.attestation.params import init_genesis
from fedledger.abci_app.modules.attestation.queries import QUERIES
from fedledger.abci_app.modules.base import Module, Route

__all__ = ["MODULE"]

MODULE = Module(
    name="attestation",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
    init_genesis=init_genesis,
)
