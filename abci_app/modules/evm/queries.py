"""Read-only queries of the EVM: params, accounts, code, storage, receipts, blocks, logs, calls, bindings, policies.

    /evm/params                       chain id, gas limits, state root
    /evm/account/0xADDR               nonce, balance, code hash and size
    /evm/code/0xADDR                  deployed code
    /evm/storage/0xADDR/0xSLOT        one storage word
    /evm/receipt/0xHASH               a tx's (or policy call's) receipt with its logs
    /evm/block/HEIGHT                 what the EVM did in a block
    /evm/logs/FROM/TO/HEX…            logs of blocks FROM..TO matching a filter
    /evm/call/HEIGHT/TIME/HEX…        eth_call: run a call on committed state, keep nothing
    /evm/estimate/HEIGHT/TIME/HEX…    eth_estimateGas
    /evm/binding/0xADDR               the DID an address is bound to
    /evm/policy/KIND[/TASK]           the policy contract that applies

HEX… is the hex of a canonical JSON object, split into path segments of at most 128 characters
(`payload_segments`), because query functions see only their path. Call and estimate run in the
context of block HEIGHT at TIME (Unix seconds) as the caller states them: their answers are
not consensus state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, cast

from eth.abc import SignedTransactionAPI
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address
from eth_utils.crypto import keccak

from fedledger.abci_app.canonical import canonical_bytes
from fedledger.abci_app.context import Reader
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.evm_engine import keys
from fedledger.abci_app.evm_engine.ledger import hex0x
from fedledger.abci_app.evm_engine.params import EvmParams, load_params
from fedledger.abci_app.evm_engine.policy import KINDS, policy_address
from fedledger.abci_app.evm_engine.session import EvmSession, Outcome, TxRejected, state_root
from fedledger.abci_app.evm_engine.vm import VM_CLASS, EvmBlock
from fedledger.abci_app.modules.base import QueryAnswer
from fedledger.abci_app.modules.fields import ID_RE
from fedledger.abci_app.records import load_record

__all__ = ["MAX_LOG_RESULTS", "MAX_LOG_SPAN", "QUERIES", "QUERY_GAS_CAP", "payload_segments"]

MAX_LOG_RESULTS = 10_000
# eth_call and eth_estimateGas run inside the node's ABCI process, which answers consensus on the
# same thread: a query runs at most this much gas (py-evm does roughly 1-3M gas per second).
QUERY_GAS_CAP = 5_000_000
MAX_LOG_SPAN = 100_000
_SEGMENT = 128
_ADDR = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_HEXDATA = re.compile(r"^0x([0-9a-fA-F]{2})*$")
_ZERO = b"\x00" * 20
_MAX_CALL_DATA = 128 * 1024


def payload_segments(payload: Mapping[str, Any]) -> str:
    """A JSON object as path segments: the hex of its canonical bytes in pieces of at most 128 characters."""
    data = canonical_bytes(dict(payload)).hex()
    return "/".join(data[i:i + _SEGMENT] for i in range(0, len(data), _SEGMENT)) or "7b7d"


def _payload(segments: list[str]) -> dict[str, Any]:
    try:
        value = json.loads(bytes.fromhex("".join(segments)))
    except ValueError as exc:
        raise TxError(Code.BAD_QUERY, f"query payload is not hex of a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise TxError(Code.BAD_QUERY, "query payload must be a JSON object")
    return value


def _params(view: Reader) -> EvmParams:
    params = load_params(view)
    if params is None:
        raise TxError(Code.QUERY_NOT_FOUND, "this chain's genesis did not set up the EVM")
    return params


def _address(text: str, what: str = "address") -> bytes:
    if not isinstance(text, str) or not _ADDR.match(text):
        raise TxError(Code.BAD_QUERY, f"{what} must be 0x + 40 hex digits, got {str(text)[:50]!r}")
    return bytes.fromhex(text[2:])


def _int(text: Any, what: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    try:
        value = int(text, 0) if isinstance(text, str) else text
    except ValueError:
        value = None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise TxError(Code.BAD_QUERY, f"{what} must be an integer in [{lo}, {hi}]")
    return value


def _session(view: Reader, height: int, time_s: int) -> tuple[EvmSession, EvmParams]:
    params = _params(view)
    block = EvmBlock(height=height, time_s=time_s, block_hash=b"", gas_limit=params.block_gas_limit,
                     chain_id=params.chain_id)
    return EvmSession(view, block), params


def _q_params(view: Reader, args: list[str]) -> QueryAnswer:
    if args:
        raise TxError(Code.BAD_QUERY, "usage: /evm/params")
    params = _params(view)
    return QueryAnswer({"chain_id": params.chain_id, "block_gas_limit": params.block_gas_limit,
                        "policy_gas": params.policy_gas, "state_root": hex0x(state_root(view))}, None)


def _q_account(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /evm/account/0xADDRESS")
    address = Address(_address(args[0]))
    session, _ = _session(view, 0, 0)
    state = session.state
    code = state.get_code(address)
    return QueryAnswer({"address": hex0x(address), "nonce": state.get_nonce(address),
                        "balance": str(state.get_balance(address)), "code_hash": hex0x(keccak(code)),
                        "code_size": len(code)}, None)


def _q_code(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /evm/code/0xADDRESS")
    session, _ = _session(view, 0, 0)
    return QueryAnswer({"code": hex0x(session.state.get_code(Address(_address(args[0]))))}, None)


def _q_storage(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 2:
        raise TxError(Code.BAD_QUERY, "usage: /evm/storage/0xADDRESS/0xSLOT")
    slot = _int(args[1], "slot", 0, 2**256 - 1)
    session, _ = _session(view, 0, 0)
    value = session.state.get_storage(Address(_address(args[0])), slot)
    return QueryAnswer({"value": hex0x(value.to_bytes(32, "big"))}, None)


def _q_receipt(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 1 or not _HASH.match(args[0]):
        raise TxError(Code.BAD_QUERY, "usage: /evm/receipt/0xTXHASH (32 bytes)")
    key = keys.receipt_key(bytes.fromhex(args[0][2:]))
    rec = load_record(view, key)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"no EVM receipt for {args[0]}")
    return QueryAnswer(rec, key)


def _q_block(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /evm/block/HEIGHT")
    height = _int(args[0], "height", 1)
    key = keys.block_key(height)
    rec = load_record(view, key)
    if rec is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"the EVM did nothing in block {height}")
    return QueryAnswer(rec, key)


def _topic_filter(raw: Any) -> list[set[str] | None]:
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > 4:
        raise TxError(Code.BAD_QUERY, "topics must be a list of at most 4 entries")
    out: list[set[str] | None] = []
    for entry in raw:
        options = [entry] if isinstance(entry, str) else entry
        if options is None:
            out.append(None)
            continue
        if not isinstance(options, list) or not all(isinstance(t, str) and _HASH.match(t) for t in options):
            raise TxError(Code.BAD_QUERY, "each topic must be null, a 32-byte hex topic, or a list of them")
        out.append({t.lower() for t in options} if options else None)
    return out


def _matches(log: Mapping[str, Any], addresses: set[str] | None, topics: list[set[str] | None]) -> bool:
    if addresses is not None and log["address"] not in addresses:
        return False
    if len(topics) > len(log["topics"]) and any(t is not None for t in topics[len(log["topics"]):]):
        return False
    return all(want is None or log["topics"][i] in want for i, want in enumerate(topics) if i < len(log["topics"]))


def _common_prefix(lo: int, hi: int) -> bytes:
    a, b = keys.log_height_prefix(lo), keys.log_height_prefix(hi)
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _q_logs(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) < 2:
        raise TxError(Code.BAD_QUERY, "usage: /evm/logs/FROM/TO/PAYLOAD with PAYLOAD {address?, topics?}")
    lo, hi = _int(args[0], "from block", 1), _int(args[1], "to block", 1)
    if hi < lo:
        raise TxError(Code.BAD_QUERY, f"to block {hi} is below from block {lo}")
    if hi - lo >= MAX_LOG_SPAN:
        raise TxError(Code.BAD_QUERY, f"a log query spans at most {MAX_LOG_SPAN} blocks; narrow the range")
    flt = _payload(args[2:]) if len(args) > 2 else {}
    raw_addr = flt.get("address")
    if raw_addr is None:
        addresses = None
    else:
        options = [raw_addr] if isinstance(raw_addr, str) else raw_addr
        if not isinstance(options, list):
            raise TxError(Code.BAD_QUERY, "address must be an address or a list of addresses")
        addresses = {hex0x(_address(a)) for a in options}
    topics = _topic_filter(flt.get("topics"))
    out = []
    # Scan the keys shared by the range's first and last block (zero-padded heights sort numerically).
    start, end = keys.log_height_prefix(lo), keys.log_height_prefix(hi + 1)
    for key, raw in view.iter_prefix(_common_prefix(lo, hi)):
        if key < start:
            continue
        if key >= end:
            break
        log = json.loads(raw)
        if _matches(log, addresses, topics):
            out.append(log)
            if len(out) > MAX_LOG_RESULTS:
                raise TxError(Code.BAD_QUERY, f"more than {MAX_LOG_RESULTS} logs match; narrow the range or filter")
    return QueryAnswer({"logs": out}, None)


def _call_args(view: Reader, args: list[str], usage: str) -> tuple[EvmSession, EvmParams, SignedTransactionAPI]:
    if len(args) < 3:
        raise TxError(Code.BAD_QUERY, usage)
    session, params = _session(view, _int(args[0], "height"), _int(args[1], "time"))
    call = _payload(args[2:])
    sender = _address(call["from"], "from") if call.get("from") is not None else _ZERO
    to = _address(call["to"], "to") if call.get("to") is not None else b""
    data = call.get("data") or "0x"
    if not isinstance(data, str) or not _HEXDATA.match(data) or len(data) > 2 * _MAX_CALL_DATA:
        raise TxError(Code.BAD_QUERY, "data must be 0x-prefixed hex of at most 128 KiB")
    cap = min(QUERY_GAS_CAP, params.block_gas_limit)
    gas = min(_int(call.get("gas", cap), "gas", 21_000, 2**63 - 1), cap)
    value = _int(call.get("value", 0), "value", 0, 2**256 - 1)
    state = session.state
    unsigned = VM_CLASS.get_transaction_builder().create_unsigned_transaction(
        nonce=state.get_nonce(Address(sender)), gas_price=0, gas=gas, to=Address(to), value=value,
        data=bytes.fromhex(data[2:]))
    return session, params, cast(SignedTransactionAPI, SpoofTransaction(unsigned, from_=Address(sender)))


def _q_call(view: Reader, args: list[str]) -> QueryAnswer:
    session, _, tx = _call_args(view, args, "usage: /evm/call/HEIGHT/TIME/PAYLOAD {from?, to?, data?, gas?, value?}")
    try:
        outcome: Outcome = session.execute(tx, bytes(tx.sender))
    except TxRejected as exc:
        raise TxError(Code.EVM_CALL_FAILED, f"call refused: {exc}") from exc
    return QueryAnswer({"success": outcome.success, "output": hex0x(outcome.output), "gas_used": outcome.gas_used,
                        "error": outcome.error}, None)


def _trial(view: Reader, block: EvmBlock, tx: SignedTransactionAPI, gas: int) -> Outcome:
    """Run `tx` with `gas` in a fresh session on `view`, so that every trial starts from the same state."""
    try:
        return EvmSession(view, block).execute(cast(SignedTransactionAPI, SpoofTransaction(tx, gas=gas)),
                                               bytes(tx.sender))
    except TxRejected as exc:
        raise TxError(Code.EVM_CALL_FAILED, f"call refused: {exc}") from exc


def _q_estimate(view: Reader, args: list[str]) -> QueryAnswer:
    """The least gas limit (within 1/64) with which the call succeeds, in a few runs.

    One run at the cap; if it fails, the call fails. Then its gas used (which a refund or the
    63/64 rule can leave just short), then a bisection between the two to within 1/64 of the
    answer, rounded up: at most about a dozen runs, each bounded by the query gas cap.
    """
    session, params, tx = _call_args(view, args, "usage: /evm/estimate/HEIGHT/TIME/PAYLOAD {from?, to?, data?, value?}")
    cap = min(QUERY_GAS_CAP, params.block_gas_limit)
    full = _trial(view, session.block, tx, cap)
    if not full.success:
        raise TxError(Code.EVM_CALL_FAILED, f"the call fails with the query gas cap {cap}: {full.error}")
    lo, hi = full.gas_used - 1, cap  # lo fails (or is below what was used), hi succeeds
    if _trial(view, session.block, tx, full.gas_used).success:
        hi = full.gas_used
    while hi - lo > max(1, hi // 64):
        mid = (lo + hi) // 2
        if _trial(view, session.block, tx, mid).success:
            hi = mid
        else:
            lo = mid
    return QueryAnswer({"gas": hi}, None)


def _q_binding(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) != 1:
        raise TxError(Code.BAD_QUERY, "usage: /evm/binding/0xADDRESS")
    key = keys.address_binding_key(_address(args[0]))
    did = view.get(key)
    if did is None:
        raise TxError(Code.QUERY_NOT_FOUND, f"{args[0]} is bound to no DID")
    return QueryAnswer({"address": args[0].lower(), "did": did.decode("ascii")}, key)


def _q_policy(view: Reader, args: list[str]) -> QueryAnswer:
    if len(args) not in (1, 2) or args[0] not in KINDS:
        raise TxError(Code.BAD_QUERY, f"usage: /evm/policy/KIND[/TASK] with KIND one of {list(KINDS)}")
    task = args[1] if len(args) == 2 else None
    if task is not None and not ID_RE.match(task):
        raise TxError(Code.BAD_QUERY, "task must be a task id")
    contract = policy_address(view, args[0], task)
    own = task is not None and view.get(keys.policy_key(args[0], task)) is not None
    return QueryAnswer({"kind": args[0], "task": task, "contract": hex0x(contract) if contract else None,
                        "scope": "task" if own else ("default" if contract else "none")}, None)


_SUB: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {
    "params": _q_params, "account": _q_account, "code": _q_code, "storage": _q_storage, "receipt": _q_receipt,
    "block": _q_block, "logs": _q_logs, "call": _q_call, "estimate": _q_estimate, "binding": _q_binding,
    "policy": _q_policy,
}


def _q_evm(view: Reader, args: list[str]) -> QueryAnswer:
    if not args or args[0] not in _SUB:
        raise TxError(Code.BAD_QUERY, f"usage: /evm/<{'|'.join(sorted(_SUB))}>/…")
    return _SUB[args[0]](view, args[1:])


QUERIES: dict[str, Callable[[Reader, list[str]], QueryAnswer]] = {"evm": _q_evm}
