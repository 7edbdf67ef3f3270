"""The compliance errors: a norm circuit that cannot be built, an update that cannot be proved within bound."""

from __future__ import annotations

from fedledger.abci_app.errors import ConfigError
from fedledger.sdk.zk.errors import ZkError

__all__ = ["ComplianceError", "NormBoundExceededError", "NormCircuitError"]


class ComplianceError(ZkError):
    """Base of the compliance-proof errors."""

    error_code = "COMPLIANCE"


class NormCircuitError(ComplianceError, ConfigError):
    """The clip bound or dimension does not make a circuit (bad decimal, bound too large for the fixed point)."""

    error_code = "NORM_CIRCUIT"


class NormBoundExceededError(ComplianceError, ConfigError):
    """The update's (quantized) L2 norm is above the task's clip bound: no accepted proof exists; clip it first."""

    error_code = "NORM_BOUND_EXCEEDED"
