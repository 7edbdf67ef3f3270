"""The modules a FedLedger chain runs, in the fixed order every validator applies them."""

from __future__ import annotations

from fedledger.abci_app.modules.anchor.module import MODULE as ANCHOR
from fedledger.abci_app.modules.attestation.module import MODULE as ATTESTATION
from fedledger.abci_app.modules.base import Module
from fedledger.abci_app.modules.evm.module import MODULE as EVM
from fedledger.abci_app.modules.federation.module import MODULE as FEDERATION
from fedledger.abci_app.modules.governance.module import MODULE as GOVERNANCE
from fedledger.abci_app.modules.identity.module import MODULE as IDENTITY
from fedledger.abci_app.modules.inference.module import MODULE as INFERENCE
from fedledger.abci_app.modules.lifecycle.module import MODULE as LIFECYCLE
from fedledger.abci_app.modules.privacy.module import MODULE as PRIVACY
from fedledger.abci_app.modules.reputation.module import MODULE as REPUTATION
from fedledger.abci_app.modules.secagg.module import MODULE as SECAGG
from fedledger.abci_app.modules.zk.module import MODULE as ZK

__all__ = ["DEFAULT_MODULES"]

DEFAULT_MODULES: tuple[Module, ...] = (IDENTITY, PRIVACY, REPUTATION, FEDERATION, SECAGG, LIFECYCLE, GOVERNANCE, EVM,
                                       ANCHOR, INFERENCE, ZK, ATTESTATION)
