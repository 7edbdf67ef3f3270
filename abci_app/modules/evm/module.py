"""The evm module object: its tx routes, queries, genesis and end-block hook, for the registry."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module, Route
from fedledger.abci_app.modules.evm.binding import BindEvmAddress, bind_evm_address
from fedledger.abci_app.modules.evm.envelope import ENVELOPE, end_block
from fedledger.abci_app.modules.evm.genesis import init_genesis
from fedledger.abci_app.modules.evm.queries import QUERIES

__all__ = ["MODULE"]

MODULE = Module(
    name="evm",
    routes={"bind_evm_address": Route(parse=BindEvmAddress.parse, handle=bind_evm_address)},
    queries=QUERIES,
    init_genesis=init_genesis,
    end_block=end_block,
    envelope=ENVELOPE,
)
