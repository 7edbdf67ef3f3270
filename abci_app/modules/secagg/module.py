"""The secagg module object: its tx routes and its bulletin-board query."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.secagg.handlers import HANDLERS
from fedledger.abci_app.modules.secagg.msgs import PARSERS
from fedledger.abci_app.modules.secagg.queries import QUERIES

__all__ = ["MODULE"]

MODULE = Module(
    name="secagg",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
)
