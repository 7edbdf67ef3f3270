"""The client's exception hierarchy: every failure a user can see, each with what to do about it."""

from __future__ import annotations

__all__ = ["ClientError", "KeyStoreError", "RPCError", "RPCUnavailableError", "TxRejectedError", "TxTimeoutError"]


class ClientError(Exception):
    """Base of every error the FedLedger client reports to a user (printed without a traceback)."""


class KeyStoreError(ClientError):
    """A key is missing, exists already, or its file is unreadable."""


class RPCUnavailableError(ClientError):
    """No CometBFT node answers at the RPC address."""


class RPCError(ClientError):
    """The node answered with a JSON-RPC error."""


class TxRejectedError(ClientError):
    """The chain rejected a tx (CheckTx or FinalizeBlock) with a registered code."""

    def __init__(self, stage: str, code: int, log: str) -> None:
        super().__init__(f"tx rejected in {stage} with code {code}: {log}")
        self.stage = stage
        self.code = code
        self.log = log


class TxTimeoutError(ClientError):
    """A broadcast tx was not seen in a block in time."""
