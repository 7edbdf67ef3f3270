"""The one exception family of the SecAgg+ library."""

from __future__ import annotations

from collections.abc import Mapping

from fedledger.abci_app.errors import ProtocolError

__all__ = ["RecoveryError", "SecAggError"]


class SecAggError(ProtocolError):
    """A SecAgg+ operation cannot go on: bad input, a failed check, or a protocol rule that would be broken."""

    error_code = "SECAGG"


class RecoveryError(SecAggError):
    """Too few shares survive to unmask the sum: the dropouts exceed what the threshold tolerates.

    `missing` maps each client that cannot be recovered to the number of shares that were
    available for it, so a driver can report or retry without parsing the message.
    """

    error_code = "SECAGG_RECOVERY"

    def __init__(self, threshold: int, missing: Mapping[int, int]) -> None:
        self.threshold = threshold
        self.missing = dict(sorted(missing.items()))
        parts = [f"cannot recover client {c}: {n} shares < threshold {threshold}" for c, n in self.missing.items()]
        super().__init__("; ".join(parts))
