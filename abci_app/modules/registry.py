"""The modules a FedLedger chain runs, in the fixed order every validator applies them."""

from __future__ import annotations

from fedledger.abci_app.modules.base import Module
from fedledger.abci_app.modules.federation import MODULE as FEDERATION
from fedledger.abci_app.modules.identity import MODULE as IDENTITY
from fedledger.abci_app.modules.privacy import MODULE as PRIVACY

__all__ = ["DEFAULT_MODULES"]

DEFAULT_MODULES: tuple[Module, ...] = (IDENTITY, PRIVACY, FEDERATION)
