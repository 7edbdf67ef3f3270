"""The one exception of the update-level DP library."""

from __future__ import annotations

from fedledger.abci_app.errors import ProtocolError

__all__ = ["UpdateDPError"]


class UpdateDPError(ProtocolError):
    """An update, clip norm, noise parameter or seed that update-level DP refuses, with the reason."""

    error_code = "UPDATE_DP"
