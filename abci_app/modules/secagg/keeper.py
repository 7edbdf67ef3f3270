"""The secagg keeper: what federation needs of a secure round's stages (its initial state, stage checks, fullness)."""

from __future__ import annotations

from fedledger.abci_app.modules.secagg.stages import initial_state, require_stage, secure_full

__all__ = ["initial_state", "require_stage", "secure_full"]
