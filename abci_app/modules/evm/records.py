"""The evm module's chain records: what the embedded EVM did per block, per tx and per log.

Light on purpose (typing only): the Ethereum JSON-RPC face (node/ethrpc/) reads these shapes from
`/evm/...` queries. Bytes are 0x-hex strings, as Ethereum's JSON writes them.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["EvmBlockRecord", "EvmLogRecord", "EvmReceipt"]


class EvmBlockRecord(TypedDict):
    """`evm/block/<height>`: the EVM's view of one block."""

    height: int
    hash: str
    time: int  # the block header's time, in seconds
    gas_used: int
    txs: list[str]  # EVM tx hashes, in execution order
    logs: int  # logs emitted in the block so far


class EvmLogRecord(TypedDict):
    """`evm/log/<height>/<index>`: one log, indexed for eth_getLogs."""

    address: str
    topics: list[str]
    data: str
    tx_hash: str
    tx_index: int
    log_index: int
    height: int
    block_hash: str


# `from` is a Python keyword, so the receipt is declared in the functional form.
EvmReceipt = TypedDict("EvmReceipt", {
    "tx_hash": str, "kind": str, "type": int, "height": int, "block_hash": str, "index": int,
    "from": str, "to": str | None, "contract_address": str | None, "status": int, "gas_used": int,
    "cumulative_gas_used": int, "error": str | None, "logs": list[EvmLogRecord],
})
EvmReceipt.__doc__ = "`evm/rcpt/<tx hash>`: an executed EVM tx's receipt (Ethereum's fields, and the kind of call)."
