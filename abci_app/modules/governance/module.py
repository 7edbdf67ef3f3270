"""The governance module object: its tx routes, queries, genesis, end-block and validator-set hooks."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.governance.genesis import init_genesis
from fedledger.abci_app.modules.governance.handlers import HANDLERS
from fedledger.abci_app.modules.governance.msgs import PARSERS
from fedledger.abci_app.modules.governance.queries import QUERIES
from fedledger.abci_app.modules.governance.tally import end_block
from fedledger.abci_app.modules.governance.validators import init_validators, take_updates

__all__ = ["MODULE"]

# Must come after the identity module in the module order: its genesis checks weights against the
# organizations identity registers.
MODULE = Module(
    name="governance",
    routes={name: Route(parse=PARSERS[name], handle=HANDLERS[name]) for name in sorted(HANDLERS)},
    queries=QUERIES,
    init_genesis=init_genesis,
    end_block=end_block,
    init_validators=init_validators,
    validator_updates=take_updates,
)
