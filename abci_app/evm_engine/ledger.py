"""What the chain records of EVM executions: per-block records, receipts, the log index and CometBFT events.

Every execution that changes EVM state in a block (a tx, or a policy call made by the chain)
gets a receipt under its 32-byte hash and a position in the block's list, and each of its logs
gets the next log index of the block (`evm/log/<height>/<index>`), which is what eth_getLogs
scans. Each log also becomes an indexed CometBFT event `evm_log`, so it can be subscribed to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from fedledger.abci_app.context import BlockContext, Event, Reader, Writer
from fedledger.abci_app.evm_engine import keys
from fedledger.abci_app.evm_engine.session import LogEntry, Outcome
from fedledger.abci_app.modules.evm.records import EvmBlockRecord, EvmLogRecord, EvmReceipt
from fedledger.abci_app.records import load_record, store_record

__all__ = ["block_record", "hex0x", "log_events", "record_execution"]


def hex0x(data: bytes) -> str:
    """Lower-case hex with a 0x prefix, as Ethereum JSON writes bytes."""
    return "0x" + data.hex()


def block_record(view: Reader, ctx: BlockContext) -> EvmBlockRecord:
    """This block's EVM record so far (a fresh one if the EVM has not run in it yet)."""
    rec = load_record(view, keys.block_key(ctx.height))
    if rec is None:
        return {"height": ctx.height, "hash": hex0x(ctx.block_hash), "time": ctx.time_ns // 1_000_000_000,
                "gas_used": 0, "txs": [], "logs": 0}
    return cast(EvmBlockRecord, rec)


def log_events(logs: Sequence[EvmLogRecord]) -> list[Event]:
    """One `evm_log` event per recorded log: address, topics, data, tx hash and log index."""
    out = []
    for log in logs:
        attrs = [("address", log["address"])]
        attrs += [(f"topic{i}", topic) for i, topic in enumerate(log["topics"])]
        attrs += [("data", log["data"]), ("tx", log["tx_hash"]), ("index", str(log["log_index"]))]
        out.append(Event(type="evm_log", attributes=tuple(attrs)))
    return out


def record_execution(state: Writer, ctx: BlockContext, tx_hash: bytes, outcome: Outcome, *, sender: bytes,
                     to: bytes | None, kind: str, tx_type: int, gas_counts: bool) -> tuple[EvmReceipt, list[Event]]:
    """Write the receipt, the logs and the block record of one execution; return the receipt and its events.

    `gas_counts` says whether the gas used counts against the block's EVM gas (txs) or not
    (policy calls, which have their own fixed budget).
    """
    block = block_record(state, ctx)
    if gas_counts:
        block["gas_used"] += outcome.gas_used
    index = len(block["txs"])
    first_log = block["logs"]
    logs = []
    for offset, entry in enumerate(outcome.logs):
        logs.append(_log_record(entry, tx_hash, index, first_log + offset, ctx, block["hash"]))
    for log in logs:
        store_record(state, keys.log_key(ctx.height, log["log_index"]), log)
    block["txs"].append(hex0x(tx_hash))
    block["logs"] = first_log + len(logs)
    store_record(state, keys.block_key(ctx.height), block)
    receipt: EvmReceipt = {
        "tx_hash": hex0x(tx_hash), "kind": kind, "type": tx_type, "height": ctx.height, "block_hash": block["hash"],
        "index": index, "from": hex0x(sender), "to": hex0x(to) if to else None,
        "contract_address": hex0x(outcome.contract_address) if outcome.contract_address else None,
        "status": 1 if outcome.success else 0, "gas_used": outcome.gas_used,
        "cumulative_gas_used": block["gas_used"], "error": outcome.error, "logs": logs,
    }
    store_record(state, keys.receipt_key(tx_hash), receipt)
    event = Event(type="evm_tx", attributes=(
        ("hash", receipt["tx_hash"]), ("kind", kind), ("from", receipt["from"]), ("to", receipt["to"] or ""),
        ("contract", receipt["contract_address"] or ""), ("status", str(receipt["status"])),
        ("gas_used", str(outcome.gas_used))))
    return receipt, [event, *log_events(logs)]


def _log_record(entry: LogEntry, tx_hash: bytes, tx_index: int, log_index: int, ctx: BlockContext,
                block_hash: str) -> EvmLogRecord:
    return {"address": hex0x(entry.address), "topics": [hex0x(t) for t in entry.topics], "data": hex0x(entry.data),
            "tx_hash": hex0x(tx_hash), "tx_index": tx_index, "log_index": log_index, "height": ctx.height,
            "block_hash": block_hash}
