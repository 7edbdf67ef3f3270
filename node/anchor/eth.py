"""The Ethereum JSON-RPC seam: the few calls anchoring makes, behind a Protocol, with web3 as the real transport.

Every call of `Web3Eth` retries transport failures (connection refused, timeouts) with
exponential backoff and then raises PublicChainUnavailable naming the URL; a JSON-RPC error
answer is not retried and comes back as EthRPCError with the node's message, for the caller to
interpret (`already known`, `nonce too low`, `replacement transaction underpriced`, …).
Unit tests drive the anchoring logic through an in-memory fake of `EthClient`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from fedledger.node.anchor.errors import PublicChainError, PublicChainUnavailable

__all__ = ["EthClient", "EthLog", "EthRPCError", "Receipt", "Web3Eth"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class EthRPCError(PublicChainError):
    """The Ethereum node answered a call with a JSON-RPC error."""

    error_code = "ETH_RPC"

    def __init__(self, what: str, message: str) -> None:
        super().__init__(f"{what}: {message}")
        self.message = message


@dataclass(frozen=True)
class EthLog:
    """One event log of a receipt: emitting address (checksummed), topics and data as 0x-hex."""

    address: str
    topics: tuple[str, ...]
    data: str
    tx_hash: str | None = None  # set for eth_getLogs answers


@dataclass(frozen=True)
class Receipt:
    """The parts of a tx receipt anchoring uses."""

    tx_hash: str
    block_number: int
    block_hash: str
    status: int
    gas_used: int
    effective_gas_price: int
    contract_address: str | None
    logs: tuple[EthLog, ...]


class EthClient(Protocol):
    """What anchoring asks of an Ethereum node."""

    url: str

    def chain_id(self) -> int:
        """eth_chainId."""
        ...

    def block_number(self) -> int:
        """eth_blockNumber."""
        ...

    def base_fee(self) -> int:
        """The latest block's baseFeePerGas (0 before London)."""
        ...

    def suggested_tip(self) -> int:
        """eth_maxPriorityFeePerGas."""
        ...

    def balance(self, address: str) -> int:
        """Balance in wei at the latest block."""
        ...

    def nonce(self, address: str, block: str) -> int:
        """eth_getTransactionCount at "latest" or "pending"."""
        ...

    def code(self, address: str) -> bytes:
        """The code at an address (empty: no contract)."""
        ...

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        """eth_estimateGas; EthRPCError when the call would revert."""
        ...

    def call(self, tx: dict[str, Any]) -> bytes:
        """eth_call at the latest block."""
        ...

    def send_raw(self, raw: bytes) -> str:
        """eth_sendRawTransaction; returns the 0x tx hash."""
        ...

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt of a mined tx, or None."""
        ...

    def transaction_known(self, tx_hash: str) -> bool:
        """Whether the node knows the tx (pending or mined)."""
        ...

    def block_hash(self, number: int) -> str | None:
        """The hash of block `number` on the node's canonical chain, or None."""
        ...

    def logs(self, address: str, topics: Sequence[str | None], from_block: int, to_block: int) -> list[EthLog]:
        """eth_getLogs of one address."""
        ...


def _hex(value: Any) -> str:
    """0x-prefixed lower-case hex of web3's bytes-like values."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def _to_log(raw: Any) -> EthLog:
    tx_hash = raw.get("transactionHash")
    return EthLog(address=str(raw["address"]), topics=tuple(_hex(t) for t in raw["topics"]), data=_hex(raw["data"]),
                  tx_hash=_hex(tx_hash) if tx_hash is not None else None)


class Web3Eth:
    """EthClient over web3's HTTP provider, retrying transport failures with backoff."""

    def __init__(self, url: str, timeout: float = 10.0, attempts: int = 5, backoff_s: float = 0.25,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        from web3 import Web3

        self.url = url
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.transport_failures = 0  # every failed attempt, for reports
        # web3's own retries are off: this class decides how long a dead node is waited for.
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None))

    def _do(self, what: str, fn: Callable[[], T]) -> T:
        import requests
        from web3.exceptions import BlockNotFound, ProviderConnectionError, TransactionNotFound, Web3RPCError

        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except (TransactionNotFound, BlockNotFound):
                raise  # answers, not failures (web3 makes them Web3RPCErrors): a block above the head after a reorg
            except Web3RPCError as exc:
                message = exc.rpc_response.get("error", {}).get("message") if isinstance(exc.rpc_response, dict) \
                    else None
                raise EthRPCError(what, str(message or exc)) from exc
            except (requests.ConnectionError, requests.Timeout, ProviderConnectionError, OSError) as exc:
                self.transport_failures += 1
                if attempt == self.attempts:
                    raise PublicChainUnavailable(
                        f"no Ethereum node answers at {self.url} ({what} failed {self.attempts} times: "
                        f"{type(exc).__name__}); check the RPC URL and that the node is running") from exc
                log.info("%s at %s failed (%s); retry %d in %.2fs", what, self.url, type(exc).__name__, attempt, delay)
                self.sleep(delay)
                delay = min(delay * 2, 4.0)
        raise AssertionError("unreachable")

    def chain_id(self) -> int:
        """eth_chainId."""
        return int(self._do("eth_chainId", lambda: self.w3.eth.chain_id))

    def block_number(self) -> int:
        """eth_blockNumber."""
        return int(self._do("eth_blockNumber", lambda: self.w3.eth.block_number))

    def base_fee(self) -> int:
        """The latest block's baseFeePerGas."""
        block: Any = self._do("eth_getBlockByNumber", lambda: self.w3.eth.get_block("latest"))
        return int(block.get("baseFeePerGas", 0) or 0)

    def suggested_tip(self) -> int:
        """eth_maxPriorityFeePerGas."""
        return int(self._do("eth_maxPriorityFeePerGas", lambda: self.w3.eth.max_priority_fee))

    def balance(self, address: str) -> int:
        """Balance in wei."""
        return int(self._do("eth_getBalance", lambda: self.w3.eth.get_balance(address)))  # type: ignore[arg-type]

    def nonce(self, address: str, block: str) -> int:
        """eth_getTransactionCount."""
        return int(self._do("eth_getTransactionCount",
                            lambda: self.w3.eth.get_transaction_count(address, block)))  # type: ignore[arg-type]

    def code(self, address: str) -> bytes:
        """eth_getCode."""
        return bytes(self._do("eth_getCode", lambda: self.w3.eth.get_code(address)))  # type: ignore[arg-type]

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        """eth_estimateGas."""
        return int(self._do("eth_estimateGas", lambda: self.w3.eth.estimate_gas(tx)))  # type: ignore[arg-type]

    def call(self, tx: dict[str, Any]) -> bytes:
        """eth_call."""
        return bytes(self._do("eth_call", lambda: self.w3.eth.call(tx)))  # type: ignore[arg-type]

    def send_raw(self, raw: bytes) -> str:
        """eth_sendRawTransaction."""
        return _hex(self._do("eth_sendRawTransaction", lambda: self.w3.eth.send_raw_transaction(raw)))

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt, or None while the tx is not mined."""
        from web3.exceptions import TransactionNotFound

        try:
            raw: Any = self._do("eth_getTransactionReceipt",
                                lambda: self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        if raw is None:
            return None
        return Receipt(tx_hash=_hex(raw["transactionHash"]), block_number=int(raw["blockNumber"]),
                       block_hash=_hex(raw["blockHash"]), status=int(raw.get("status", 0)),
                       gas_used=int(raw["gasUsed"]), effective_gas_price=int(raw.get("effectiveGasPrice", 0)),
                       contract_address=str(raw["contractAddress"]) if raw.get("contractAddress") else None,
                       logs=tuple(_to_log(x) for x in raw.get("logs", [])))

    def transaction_known(self, tx_hash: str) -> bool:
        """eth_getTransactionByHash is not null."""
        from web3.exceptions import TransactionNotFound

        try:
            tx = self._do("eth_getTransactionByHash",
                          lambda: self.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return tx is not None

    def block_hash(self, number: int) -> str | None:
        """The canonical block hash at `number`, or None."""
        from web3.exceptions import BlockNotFound

        try:
            block: Any = self._do("eth_getBlockByNumber", lambda: self.w3.eth.get_block(number))
        except BlockNotFound:
            return None
        return _hex(block["hash"]) if block else None

    def logs(self, address: str, topics: Sequence[str | None], from_block: int, to_block: int) -> list[EthLog]:
        """eth_getLogs."""
        params: Any = {"address": address, "topics": list(topics), "fromBlock": from_block, "toBlock": to_block}
        return [_to_log(x) for x in self._do("eth_getLogs", lambda: self.w3.eth.get_logs(params))]
