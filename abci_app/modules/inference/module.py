"""The inference module object: its tx routes, queries and genesis section, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.inference.encrypted import ReportEncrypted, report_encrypted
from fedledger.abci_app.modules.inference.handlers import HANDLERS
from fedledger.abci_app.modules.inference.msgs import PARSERS
from fedledger.abci_app.modules.inference.params import init_genesis
from fedledger.abci_app.modules.inference.queries import QUERIES

__all__ = ["MODULE"]

MODULE = Module(
    name="inference",
    routes={**{name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
            "report_encrypted_inference": Route(parse=ReportEncrypted.parse, handle=report_encrypted)},
    queries=QUERIES,
    init_genesis=init_genesis,
)
