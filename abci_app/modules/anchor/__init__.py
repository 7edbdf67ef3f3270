"""Anchor module: records of confirmed anchors of this chain's checkpoints on a public chain (node/anchor)."""

from __future__ import annotations

from fedledger.abci_app.modules.anchor.handlers import HANDLERS, ROLES, meta
from fedledger.abci_app.modules.anchor.msgs import PARSERS, SCHEMES, RecordAnchor
from fedledger.abci_app.modules.anchor.queries import QUERIES, covering
from fedledger.abci_app.modules.base import Module, Route

__all__ = ["MODULE", "ROLES", "SCHEMES", "RecordAnchor", "covering", "meta"]

MODULE = Module(
    name="anchor",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
)
