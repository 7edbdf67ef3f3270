"""The zk module object: its tx routes, queries and genesis section, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.zk.handlers import HANDLERS
from fedledger.abci_app.modules.zk.msgs import PARSERS
from fedledger.abci_app.modules.zk.params import init_genesis
from fedledger.abci_app.modules.zk.queries import QUERIES

__all__ = ["MODULE"]

MODULE = Module(
    name="zk",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
    init_genesis=init_genesis,
)
