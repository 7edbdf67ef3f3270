"""The Ethereum JSON-RPC methods a FedLedger node answers, over a Backend.

    eth_chainId  net_version  eth_blockNumber  eth_getBalance  eth_getTransactionCount  eth_getCode
    eth_getStorageAt  eth_call  eth_estimateGas  eth_sendRawTransaction  eth_getTransactionReceipt
    eth_getLogs  eth_getBlockByNumber  eth_gasPrice  eth_maxPriorityFeePerGas  eth_accounts
    web3_clientVersion  net_listening

State is the latest committed state only (`latest`, `pending`, `safe` and `finalized` all mean
it: CometBFT blocks are final); a state query at an older block is refused. Fees are zero, so
gas prices answer 0 and blocks show a base fee of 0. Errors are JSON-RPC errors: -32602 for bad
parameters, -32000 for a refused tx (with the chain's CheckTx log), 3 with the revert data for a
call that reverts (as geth does, so web3 raises ContractLogicError).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from eth_bloom.bloom import BloomFilter

from fedledger.abci_app.errors import ProtocolError
from fedledger.abci_app.evm_engine.ethtx import wrap
from fedledger.abci_app.modules.evm.queries import payload_segments
from fedledger.abci_app.modules.evm.records import EvmLogRecord, EvmReceipt
from fedledger.node.ethrpc.backend import Backend, BackendError, BlockInfo, QueryFailed

__all__ = ["CLIENT_VERSION", "EthApi", "RpcError"]

CLIENT_VERSION = "FedLedger/0.1.0/py-evm"
_QUERY_NOT_FOUND = 21
_EVM_CALL_FAILED = 67
_ADDR = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_DATA = re.compile(r"^0x([0-9a-fA-F]{2})*$")
_QUANTITY = re.compile(r"^0x(0|[1-9a-fA-F][0-9a-fA-F]*)$")
_LATEST_TAGS = ("latest", "pending", "safe", "finalized")


class RpcError(ProtocolError):
    """A JSON-RPC error: code, message and optional data."""

    error_code = "ETH_JSONRPC"

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _q(value: int) -> str:
    return hex(value)


def _params(params: Any, lo: int, hi: int, method: str) -> list[Any]:
    if params is None:
        params = []
    if not isinstance(params, list) or not lo <= len(params) <= hi:
        raise RpcError(-32602, f"{method} takes {lo}..{hi} positional parameters")
    return params + [None] * (hi - len(params))


def _address(value: Any, what: str = "address") -> str:
    if not isinstance(value, str) or not _ADDR.match(value):
        raise RpcError(-32602, f"{what} must be a 20-byte hex address")
    return value.lower()


def _quantity(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise RpcError(-32602, f"{what} must be a hex quantity like 0x1a")
    return int(value, 16)


class EthApi:
    """Answers Ethereum JSON-RPC methods from a FedLedger node."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._chain_id: int | None = None
        self._gas_limit = 0
        self.methods: dict[str, Callable[[list[Any]], Any]] = {
            "web3_clientVersion": lambda p: CLIENT_VERSION,
            "net_version": lambda p: str(self.chain_id()),
            "net_listening": lambda p: True,
            "eth_chainId": lambda p: _q(self.chain_id()),
            "eth_blockNumber": lambda p: _q(self.backend.latest().height),
            "eth_gasPrice": lambda p: "0x0",
            "eth_maxPriorityFeePerGas": lambda p: "0x0",
            "eth_accounts": lambda p: [],
            "eth_getBalance": self.get_balance,
            "eth_getTransactionCount": self.get_transaction_count,
            "eth_getCode": self.get_code,
            "eth_getStorageAt": self.get_storage_at,
            "eth_call": self.call,
            "eth_estimateGas": self.estimate_gas,
            "eth_sendRawTransaction": self.send_raw_transaction,
            "eth_getTransactionReceipt": self.get_transaction_receipt,
            "eth_getLogs": self.get_logs,
            "eth_getBlockByNumber": self.get_block_by_number,
        }

    def handle(self, method: str, params: Any) -> Any:
        """The result of one call; RpcError for anything that fails."""
        fn = self.methods.get(method)
        if fn is None:
            raise RpcError(-32601, f"method {method!r} is not available; this node answers {sorted(self.methods)}")
        if params is not None and not isinstance(params, list):
            raise RpcError(-32602, "params must be a list")
        try:
            return fn(params or [])
        except BackendError as exc:
            raise RpcError(-32000, f"the FedLedger node did not answer: {exc}") from exc

    # ----- helpers -----
    def _query(self, path: str) -> Any:
        try:
            return self.backend.query(path)
        except QueryFailed as exc:
            raise RpcError(-32000, exc.log) from exc

    def chain_id(self) -> int:
        """The EVM's EIP-155 chain id (fixed at genesis, so fetched once)."""
        if self._chain_id is None:
            params = self._query("/evm/params")
            self._chain_id, self._gas_limit = int(params["chain_id"]), int(params["block_gas_limit"])
        return self._chain_id

    def _state_block(self, tag: Any) -> BlockInfo:
        """The block whose state a query reads: the latest; an older block number is refused."""
        latest = self.backend.latest()
        if tag is None or tag in _LATEST_TAGS:
            return latest
        if isinstance(tag, dict):  # EIP-1898 {"blockNumber": …} / {"blockHash": …}
            tag = tag.get("blockNumber", "latest")
        if tag == "earliest":
            number = 0
        else:
            number = _quantity(tag, "block number")
        if number != latest.height:
            raise RpcError(-32000, f"only the latest state (block {latest.height}) is kept; block {number} was "
                                   "asked")
        return latest

    def _block_number(self, tag: Any, latest: int) -> int:
        if tag is None or tag in _LATEST_TAGS:
            return latest
        if tag == "earliest":
            return 1
        return _quantity(tag, "block number")

    def _account(self, address: str) -> Any:
        return self._query(f"/evm/account/{address}")

    # ----- state -----
    def get_balance(self, params: list[Any]) -> str:
        """eth_getBalance(address, block)."""
        address, tag = _params(params, 1, 2, "eth_getBalance")
        self._state_block(tag)
        return _q(int(self._account(_address(address))["balance"]))

    def get_transaction_count(self, params: list[Any]) -> str:
        """eth_getTransactionCount(address, block): the committed nonce ("pending" too)."""
        address, tag = _params(params, 1, 2, "eth_getTransactionCount")
        self._state_block(tag)
        return _q(int(self._account(_address(address))["nonce"]))

    def get_code(self, params: list[Any]) -> str:
        """eth_getCode(address, block)."""
        address, tag = _params(params, 1, 2, "eth_getCode")
        self._state_block(tag)
        return str(self._query(f"/evm/code/{_address(address)}")["code"])

    def get_storage_at(self, params: list[Any]) -> str:
        """eth_getStorageAt(address, slot, block)."""
        address, slot, tag = _params(params, 2, 3, "eth_getStorageAt")
        self._state_block(tag)
        return str(self._query(f"/evm/storage/{_address(address)}/{_q(_quantity(slot, 'slot'))}")["value"])

    def _call_payload(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict):
            raise RpcError(-32602, "the call must be an object {from?, to?, data?, gas?, value?}")
        out: dict[str, Any] = {}
        if call.get("from") is not None:
            out["from"] = _address(call["from"], "from")
        if call.get("to") is not None:
            out["to"] = _address(call["to"], "to")
        data = call.get("data", call.get("input"))
        if data is not None:
            if not isinstance(data, str) or not _DATA.match(data):
                raise RpcError(-32602, "data must be 0x-prefixed hex bytes")
            out["data"] = data
        if call.get("gas") is not None:
            self.chain_id()
            out["gas"] = min(_quantity(call["gas"], "gas"), self._gas_limit)
        if call.get("value") is not None:
            out["value"] = str(_quantity(call["value"], "value"))
        return out

    def _context(self, tag: Any) -> str:
        block = self._state_block(tag)
        return f"{block.height + 1}/{block.time_s}"

    def call(self, params: list[Any]) -> str:
        """eth_call(call, block): runs on committed state, keeps nothing."""
        call, tag = _params(params, 1, 3, "eth_call")[:2]
        payload = self._call_payload(call)
        try:
            result = self.backend.query(f"/evm/call/{self._context(tag)}/{payload_segments(payload)}")
        except QueryFailed as exc:
            raise RpcError(-32000, exc.log) from exc
        if not result["success"]:
            error = str(result["error"])
            if error.startswith("reverted"):
                raise RpcError(3, "execution " + error, result["output"])
            raise RpcError(-32000, error)
        return str(result["output"])

    def estimate_gas(self, params: list[Any]) -> str:
        """eth_estimateGas(call, block): the least gas with which the call succeeds."""
        call, tag = _params(params, 1, 2, "eth_estimateGas")
        payload = self._call_payload(call)
        payload.pop("gas", None)
        try:
            result = self.backend.query(f"/evm/estimate/{self._context(tag)}/{payload_segments(payload)}")
        except QueryFailed as exc:
            if exc.code == _EVM_CALL_FAILED:
                raise RpcError(3, f"execution failed: {exc.log}") from exc
            raise RpcError(-32000, exc.log) from exc
        return _q(int(result["gas"]))

    # ----- transactions -----
    def send_raw_transaction(self, params: list[Any]) -> str:
        """eth_sendRawTransaction(raw): CheckTx, then the mempool; returns the tx hash."""
        (raw,) = _params(params, 1, 1, "eth_sendRawTransaction")
        if not isinstance(raw, str) or not _DATA.match(raw) or len(raw) < 4:
            raise RpcError(-32602, "the raw tx must be 0x-prefixed hex bytes")
        from eth_utils.crypto import keccak

        data = bytes.fromhex(raw[2:])
        result = self.backend.broadcast(wrap(data))
        if result.code != 0:
            raise RpcError(-32000, f"tx refused (code {result.code}): {result.log}")
        return "0x" + keccak(data).hex()

    def get_transaction_receipt(self, params: list[Any]) -> dict[str, Any] | None:
        """eth_getTransactionReceipt(hash): null until the tx is in a block."""
        (tx_hash,) = _params(params, 1, 1, "eth_getTransactionReceipt")
        if not isinstance(tx_hash, str) or not _HASH.match(tx_hash):
            raise RpcError(-32602, "the tx hash must be 32 bytes of hex")
        try:
            rec = self.backend.query(f"/evm/receipt/{tx_hash.lower()}")
        except QueryFailed as exc:
            if exc.code == _QUERY_NOT_FOUND:
                return None
            raise RpcError(-32000, exc.log) from exc
        return _receipt(cast(EvmReceipt, rec))

    def get_logs(self, params: list[Any]) -> list[dict[str, Any]]:
        """eth_getLogs(filter): logs of a block range (or one block hash) by address and topics."""
        (flt,) = _params(params, 1, 1, "eth_getLogs")
        if not isinstance(flt, dict):
            raise RpcError(-32602, "the filter must be an object")
        latest = self.backend.latest().height
        if flt.get("blockHash") is not None:
            raise RpcError(-32602, "filter by fromBlock/toBlock; blockHash is not supported")
        lo = max(1, self._block_number(flt.get("fromBlock"), latest))
        hi = min(latest, self._block_number(flt.get("toBlock"), latest))
        if hi < lo:
            return []
        payload: dict[str, Any] = {}
        address = flt.get("address")
        if address is not None:
            addresses = [address] if isinstance(address, str) else address
            if not isinstance(addresses, list):
                raise RpcError(-32602, "address must be an address or a list of addresses")
            payload["address"] = [_address(a) for a in addresses]
        if flt.get("topics") is not None:
            payload["topics"] = flt["topics"]
        logs = self._query(f"/evm/logs/{lo}/{hi}/{payload_segments(payload)}")["logs"]
        return [_log(cast(EvmLogRecord, log)) for log in logs]

    # ----- blocks -----
    def get_block_by_number(self, params: list[Any]) -> dict[str, Any] | None:
        """eth_getBlockByNumber(number, full): a CometBFT block as an Ethereum block (no full txs)."""
        tag, _full = _params(params, 1, 2, "eth_getBlockByNumber")
        latest = self.backend.latest()
        number = self._block_number(tag, latest.height)
        info = latest if number == latest.height else self.backend.block(number)
        if info is None:
            return None
        self.chain_id()
        try:
            evm = self.backend.query(f"/evm/block/{number}")
        except QueryFailed:
            evm = {"gas_used": 0, "txs": []}
        return {
            "number": _q(info.height), "hash": "0x" + info.hash.hex(), "parentHash": "0x" + info.parent_hash.hex(),
            "timestamp": _q(info.time_s), "gasLimit": _q(self._gas_limit), "gasUsed": _q(int(evm["gas_used"])),
            "baseFeePerGas": "0x0", "miner": "0x" + "00" * 20, "difficulty": "0x0", "totalDifficulty": "0x0",
            "extraData": "0x", "size": "0x0", "nonce": "0x0000000000000000", "mixHash": "0x" + info.hash.hex(),
            "sha3Uncles": "0x" + "00" * 32, "logsBloom": "0x" + "00" * 256, "stateRoot": "0x" + "00" * 32,
            "transactionsRoot": "0x" + "00" * 32, "receiptsRoot": "0x" + "00" * 32,
            "transactions": list(evm["txs"]), "uncles": [],
        }


# The return values below are Ethereum JSON-RPC objects (web3's shapes), not FedLedger records.
def _log(log: EvmLogRecord) -> dict[str, Any]:
    return {"address": log["address"], "topics": log["topics"], "data": log["data"],
            "blockNumber": _q(int(log["height"])), "blockHash": log["block_hash"], "transactionHash": log["tx_hash"],
            "transactionIndex": _q(int(log["tx_index"])), "logIndex": _q(int(log["log_index"])), "removed": False}


def _receipt(rec: EvmReceipt) -> dict[str, Any]:
    bloom = BloomFilter()
    for log in rec["logs"]:
        bloom.add(bytes.fromhex(log["address"][2:]))
        for topic in log["topics"]:
            bloom.add(bytes.fromhex(topic[2:]))
    return {
        "transactionHash": rec["tx_hash"], "transactionIndex": _q(int(rec["index"])), "blockHash": rec["block_hash"],
        "blockNumber": _q(int(rec["height"])), "from": rec["from"], "to": rec["to"],
        "cumulativeGasUsed": _q(int(rec["cumulative_gas_used"])), "gasUsed": _q(int(rec["gas_used"])),
        "effectiveGasPrice": "0x0", "contractAddress": rec["contract_address"],
        "logs": [_log(log) for log in rec["logs"]], "logsBloom": "0x" + int(bloom).to_bytes(256, "big").hex(),
        "status": _q(int(rec["status"])), "type": _q(int(rec["type"])),
    }
