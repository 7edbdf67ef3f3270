"""EVM txs as a second kind of chain tx: mempool checks (CheckTx), proposal checks, and execution in FinalizeBlock.

The bytes are `EVM_ENVELOPE_PREFIX || raw Ethereum tx`. Authentication is the tx's own secp256k1
signature and the sender's EVM account nonce (no FedLedger nonce is involved); permission is a
binding of the sender to an enrolled member. A tx the EVM refuses before running (wrong nonce,
too little gas, gas beyond what the block has left) changes nothing, not even the nonce; a tx
that runs and reverts is included like on Ethereum (receipt status 0, nonce used).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping

from eth_typing import Address

from fedledger.abci_app.context import BlockContext, Event, Reader, TxResult, Writer
from fedledger.abci_app.errors import Code, TxError
from fedledger.abci_app.evm_engine.ethtx import EVM_ENVELOPE_PREFIX, EthTx, decode_eth_tx, unwrap
from fedledger.abci_app.evm_engine.ledger import block_record, record_execution
from fedledger.abci_app.evm_engine.params import EvmParams, load_params
from fedledger.abci_app.evm_engine.session import EvmSession, TxRejected
from fedledger.abci_app.evm_engine.vm import EvmBlock
from fedledger.abci_app.modules.base import RawEnvelope
from fedledger.abci_app.modules.evm.binding import require_bound_member

__all__ = ["ENVELOPE", "MAX_PENDING", "budget", "check", "deliver", "end_block", "mempool_key", "stateless"]

log = logging.getLogger("fedledger.evm")

# Txs one sender may have waiting in the mempool (as for FedLedger signers).
MAX_PENDING = 32
MAX_INIT_CODE = 49_152  # EIP-3860
_CACHE = 50_000
_decoded: OrderedDict[tuple[bytes, int], EthTx] = OrderedDict()
# Time spent in py-evm during the current block, for the log line end_block writes (`fedledger bench evm`
# reads it). A measurement only: it never reaches state, results or events.
_block_stats = {"txs": 0, "ns": 0}


def _params(view: Reader) -> EvmParams:
    params = load_params(view)
    if params is None:
        raise TxError(Code.EVM_MALFORMED, "this chain's genesis did not set up the EVM")
    return params


def _decode(envelope: bytes, chain_id: int) -> EthTx:
    # Decoding (with signature recovery) is a pure function of the bytes and the chain id, and each tx
    # is decoded up to four times (CheckTx, PrepareProposal, ProcessProposal, FinalizeBlock).
    key = (envelope, chain_id)
    etx = _decoded.get(key)
    if etx is None:
        etx = decode_eth_tx(unwrap(envelope), chain_id)
        _decoded[key] = etx
        if len(_decoded) > _CACHE:
            _decoded.popitem(last=False)
    return etx


def mempool_key(sender: bytes) -> str:
    """The key of an EVM sender in the state machine's table of pending nonces (never a FedLedger signer's)."""
    return "evm:0x" + sender.hex()


def _block(params: EvmParams, ctx: BlockContext) -> EvmBlock:
    return EvmBlock(height=ctx.height, time_s=ctx.time_ns // 1_000_000_000, block_hash=ctx.block_hash,
                    gas_limit=params.block_gas_limit, chain_id=params.chain_id)


def _check_nonce(expected: int, nonce: int) -> None:
    if nonce < expected:
        raise TxError(Code.NONCE_REPLAY, f"EVM nonce {nonce} already used; the sender's next nonce is {expected}")
    if nonce > expected:
        raise TxError(Code.NONCE_GAP, f"EVM nonce {nonce} skips ahead: the sender's next nonce is {expected}")


def stateless(view: Reader, envelope: bytes) -> None:
    """Proposal-time checks: decodes, right chain id, valid signature, gas within the block limit."""
    params = _params(view)
    etx = _decode(envelope, params.chain_id)
    if etx.gas > params.block_gas_limit:
        raise TxError(Code.EVM_GAS_LIMIT, f"gas {etx.gas} exceeds the block gas limit {params.block_gas_limit}")


def check(view: Reader, ctx: BlockContext, envelope: bytes, pending: Mapping[str, int], recheck: bool
          ) -> tuple[str, int]:
    """CheckTx of an EVM tx against committed state; returns (mempool key, nonce) to remember as pending."""
    params = _params(view)
    etx = _decode(envelope, params.chain_id)
    key = mempool_key(etx.sender)
    session = EvmSession(view, _block(params, ctx))
    sender = Address(etx.sender)
    committed = session.state.get_nonce(sender)
    expected = max(committed, pending.get(key, -1) + 1)
    _check_nonce(expected, etx.nonce)
    if recheck:
        return key, etx.nonce
    if etx.nonce - committed >= MAX_PENDING:
        raise TxError(Code.RATE_LIMITED, f"EVM sender already has {MAX_PENDING} txs waiting for a block; wait for "
                                         "them to commit")
    if etx.gas > params.block_gas_limit:
        raise TxError(Code.EVM_GAS_LIMIT, f"gas {etx.gas} exceeds the block gas limit {params.block_gas_limit}")
    require_bound_member(view, etx.sender, ctx)
    tx = etx.tx
    if etx.gas < tx.intrinsic_gas:
        raise TxError(Code.EVM_INVALID, f"gas {etx.gas} is below the tx's intrinsic gas {tx.intrinsic_gas}")
    if not etx.to and len(tx.data) > MAX_INIT_CODE:
        raise TxError(Code.EVM_INVALID, f"init code is {len(tx.data)} bytes; the limit is {MAX_INIT_CODE}")
    cost = int(tx.value) + etx.gas * int(tx.max_fee_per_gas)
    balance = session.state.get_balance(sender)
    if balance < cost:
        raise TxError(Code.EVM_INVALID, f"sender balance {balance} wei cannot cover value plus gas × max fee "
                                        f"({cost} wei); fees on this chain are 0, send with maxFeePerGas 0")
    return key, etx.nonce


def deliver(state: Writer, ctx: BlockContext, envelope: bytes) -> TxResult:
    """Execute an EVM tx in FinalizeBlock: permission, block gas, nonce, then the EVM; record the outcome."""
    params = _params(state)
    etx = _decode(envelope, params.chain_id)
    require_bound_member(state, etx.sender, ctx)
    used = block_record(state, ctx)["gas_used"]
    if used + etx.gas > params.block_gas_limit:
        raise TxError(Code.EVM_GAS_LIMIT, f"the block has {params.block_gas_limit - used} EVM gas left and the tx asks "
                                          f"for {etx.gas}; send it again for a later block")
    started = time.perf_counter_ns()
    session = EvmSession(state, _block(params, ctx))
    _check_nonce(session.state.get_nonce(Address(etx.sender)), etx.nonce)
    try:
        outcome = session.apply(etx)
    except TxRejected as exc:
        raise TxError(Code.EVM_INVALID, f"the EVM refused the tx: {exc}") from exc
    session.commit(state)
    _block_stats["txs"] += 1
    _block_stats["ns"] += time.perf_counter_ns() - started
    _, events = record_execution(state, ctx, etx.hash, outcome, sender=etx.sender, to=etx.to or None,
                                 kind="tx", tx_type=etx.tx.type_id or 0, gas_counts=True)
    return TxResult(code=0, log=outcome.error, data=etx.hash, events=events)


def budget(view: Reader, envelope: bytes) -> tuple[int, int]:
    """(the tx's gas limit, the block gas limit): PrepareProposal packs EVM txs within the block's gas."""
    params = _params(view)
    return _decode(envelope, params.chain_id).gas, params.block_gas_limit


def end_block(state: Writer, ctx: BlockContext) -> list[Event]:
    """Log how long this block's EVM txs took in py-evm (a measurement; nothing is written or emitted)."""
    if _block_stats["txs"]:
        log.info("evm block %d: %d txs, %.3f ms in py-evm", ctx.height, _block_stats["txs"],
                 _block_stats["ns"] / 1e6)
        _block_stats["txs"] = _block_stats["ns"] = 0
    return []


ENVELOPE = RawEnvelope(prefix=EVM_ENVELOPE_PREFIX, stateless=stateless, check=check, deliver=deliver,
                       budget=budget)
