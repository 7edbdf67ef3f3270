"""The federation module object: its tx routes, queries, genesis and end-block hook, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.federation.handlers import HANDLERS
from fedledger.abci_app.modules.federation.msgs import PARSERS
from fedledger.abci_app.modules.federation.queries import LISTINGS, QUERIES

__all__ = ["MODULE"]

MODULE = Module(
    name="federation",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
    listings=LISTINGS,
)
