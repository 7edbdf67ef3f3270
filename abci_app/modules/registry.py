"""The modules a FedLedger chain runs, in the fixed order every validator applies them."""

from __future__ import annotations

from fedledger.abci_app.modules.anchor import MODULE as ANCHOR
from fedledger.abci_app.modules.base import Module
from fedledger.abci_app.modules.evm import MODULE as EVM
from fedledger.abci_app.modules.federation import MODULE as FEDERATION
from fedledger.abci_app.modules.governance import MODULE as GOVERNANCE
from fedledger.abci_app.modules.identity import MODULE as IDENTITY
from fedledger.abci_app.modules.lifecycle import MODULE as LIFECYCLE
from fedledger.abci_app.modules.privacy import MODULE as PRIVACY
from fedledger.abci_app.modules.reputation import MODULE as REPUTATION
from fedledger.abci_app.modules.secagg.module import MODULE as SECAGG

__all__ = ["DEFAULT_MODULES"]

DEFAULT_MODULES: tuple[Module, ...] = (IDENTITY, PRIVACY, REPUTATION, FEDERATION, SECAGG, LIFECYCLE, GOVERNANCE, EVM,
                                       ANCHOR)
