"""The zk errors, in FedLedger's error family: a bad setup input, a bad SRS, a proof that does not verify."""

from __future__ import annotations

from fedledger.abci_app.errors import ConfigError, FedLedgerError, VerificationError

__all__ = ["ZkError", "ZkProofError", "ZkProvingError", "ZkSRSError", "ZkSetupError"]


class ZkError(FedLedgerError):
    """Base of the zk errors."""

    error_code = "ZK"


class ZkSetupError(ZkError, ConfigError):
    """A circuit cannot be built from the artifact given (malformed ONNX, too many rows for the SRS, ...)."""

    error_code = "ZK_SETUP"


class ZkSRSError(ZkError, ConfigError):
    """The SRS file is missing, unreadable, or not the one expected (its sha256 differs)."""

    error_code = "ZK_SRS"


class ZkProvingError(ZkError, ConfigError):
    """Proving failed: the input does not fit the circuit, or ezkl could not produce a proof."""

    error_code = "ZK_PROVING"


class ZkProofError(ZkError, VerificationError):
    """A proof does not verify against the circuit's vk, or its instances do not fit the circuit."""

    error_code = "ZK_PROOF"
