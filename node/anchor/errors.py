"""The anchoring service's errors: each one line a user can act on, printed without a traceback by the CLI."""

from __future__ import annotations

from fedledger.abci_app.errors import ConfigError, Family, UnavailableError
from fedledger.sdk.errors import ClientError

__all__ = ["AnchorConfigError", "AnchorError", "AnchorTimeoutError", "AnchorTxError", "PublicChainError",
           "PublicChainUnavailable", "TxDroppedError"]


class AnchorError(ClientError):
    """Base of every anchoring failure."""

    error_code = "ANCHOR"


class AnchorConfigError(AnchorError, ConfigError):
    """The anchoring configuration is missing or malformed (RPC URL, key, contract address, numbers)."""

    family = Family.CONFIG
    error_code = "ANCHOR_CONFIG"


class PublicChainError(AnchorError, UnavailableError):
    """The public chain refuses the anchor: wrong chain id, unfunded key, no contract at the address, a revert."""

    family = Family.NETWORK
    error_code = "PUBLIC_CHAIN"


class PublicChainUnavailable(PublicChainError):
    """No Ethereum node answers at the RPC URL (after retries with backoff)."""

    error_code = "PUBLIC_CHAIN_UNAVAILABLE"


class AnchorTxError(PublicChainError):
    """An anchor tx failed on chain (reverted) or could not be confirmed in time."""

    family = Family.CHAIN
    error_code = "ANCHOR_TX"


class AnchorTimeoutError(AnchorTxError):
    """An anchor tx was not confirmed within the configured time (it may still be mined later)."""

    family = Family.NETWORK
    error_code = "ANCHOR_TIMEOUT"


class TxDroppedError(AnchorTxError):
    """Another tx took the anchor tx's nonce: none of the anchor's attempts will ever be mined."""

    error_code = "ANCHOR_TX_DROPPED"

    def __init__(self, message: str, attempts: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.attempts = attempts  # the hashes that will never be mined
