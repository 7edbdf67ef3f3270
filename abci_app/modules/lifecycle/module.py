"""The lifecycle module object: its tx routes, queries, genesis and end-block hook, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.lifecycle.handlers import HANDLERS
from fedledger.abci_app.modules.lifecycle.msgs import PARSERS
from fedledger.abci_app.modules.lifecycle.params import (
    init_genesis,
)
from fedledger.abci_app.modules.lifecycle.queries import QUERIES

__all__ = ["MODULE"]

MODULE = Module(
    name="lifecycle",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
    init_genesis=init_genesis,
)
