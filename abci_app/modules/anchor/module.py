"""The anchor module object: its tx routes, queries, genesis and end-block hook, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.anchor.handlers import HANDLERS
from fedledger.abci_app.modules.anchor.msgs import PARSERS
from fedledger.abci_app.modules.anchor.queries import QUERIES
from fedledger.abci_app.modules.base import Module, Route

__all__ = ["MODULE"]

MODULE = Module(
    name="anchor",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
)
