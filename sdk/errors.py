"""The client's exception hierarchy: every failure a user can see, each with what to do about it."""

from __future__ import annotations

from fedledger.abci_app.errors import ChainRejectedError, ConfigError, Family, FedLedgerError, UnavailableError

__all__ = ["ClientError", "KeyStoreError", "RPCError", "RPCUnavailableError", "TxRejectedError", "TxTimeoutError"]


class ClientError(FedLedgerError):
    """Base of every error the FedLedger client reports to a user (printed without a traceback)."""

    error_code = "CLIENT"


class KeyStoreError(ClientError, ConfigError):
    """A key is missing, exists already, or its file is unreadable."""

    family = Family.CONFIG
    error_code = "KEYSTORE"


class RPCUnavailableError(ClientError, UnavailableError):
    """No CometBFT node answers at the RPC address."""

    family = Family.NETWORK
    error_code = "RPC_UNAVAILABLE"


class RPCError(ClientError, UnavailableError):
    """The node answered with a JSON-RPC error."""

    family = Family.NETWORK
    error_code = "RPC_ERROR"


class TxRejectedError(ClientError, ChainRejectedError):
    """The chain rejected a tx (CheckTx or FinalizeBlock) with a registered code."""

    family = Family.CHAIN
    error_code = "TX_REJECTED"

    def __init__(self, stage: str, code: int, log: str) -> None:
        super().__init__(f"tx rejected in {stage} with code {code}: {log}")
        self.stage = stage
        self.code = code
        self.log = log


class TxTimeoutError(ClientError, UnavailableError):
    """A broadcast tx was not seen in a block in time."""

    family = Family.NETWORK
    error_code = "TX_TIMEOUT"
