"""Sending one Ethereum tx to N confirmations: EIP-1559 fees, nonces, gas estimation, outages, replacement, drops.

`TxSender.send` signs a type-2 tx with the eth-account key and follows it until it has the
configured number of confirmations, whatever happens on the way:

* **fees:** the tip is the node's `eth_maxPriorityFeePerGas` (or a configured one); the fee cap
  is 2 × the latest base fee + tip, bounded by `max_fee_wei` when set;
* **nonce:** the account's pending nonce, kept for every replacement of the same tx;
* **gas:** `eth_estimateGas` plus 25% (a revert shows here, before anything is signed);
* **balance:** refused up front when the key cannot pay gas × fee cap;
* **outages:** while the node does not answer, the wait goes on with backoff up to
  `confirm_timeout_s`; a node that comes back without the tx gets the same signed bytes again;
* **stuck:** a tx not mined within `stuck_after_s` is replaced: same nonce, tip and fee cap
  raised by at least 12.5% (nodes demand 10%) and to the market's current suggestion;
* **dropped:** when the nonce is used by a tx that is none of ours, TxDroppedError (the caller
  may start over with a new nonce);
* **confirmed:** mined with status 1 in a block that is still canonical, and
  `latest - block + 1 >= confirmations`; a reorg that removes the block sends the wait back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedledger.node.anchor.errors import (
    AnchorTimeoutError,
    AnchorTxError,
    PublicChainError,
    PublicChainUnavailable,
    TxDroppedError,
)
from fedledger.node.anchor.eth import EthClient, EthRPCError, Receipt

__all__ = ["BUMP_DENOMINATOR", "BUMP_NUMERATOR", "Attempt", "Confirmed", "Quote", "SendPolicy", "TxSender"]

log = logging.getLogger(__name__)

BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8  # +12.5% per replacement; geth and most nodes demand +10%
_GAS_MARGIN_NUM, _GAS_MARGIN_DEN = 5, 4


@dataclass(frozen=True)
class SendPolicy:
    """How patiently and how expensively to send (see AnchorConfig for the meaning of each)."""

    confirmations: int = 2
    stuck_after_s: float = 30.0
    confirm_timeout_s: float = 600.0
    poll_s: float = 0.5
    priority_fee_wei: int | None = None
    max_fee_wei: int | None = None


@dataclass
class Attempt:
    """One signed version of the tx (the first, or a replacement with higher fees)."""

    tx_hash: str
    raw: bytes
    tip: int
    max_fee: int
    sent_at: float


@dataclass(frozen=True)
class Confirmed:
    """A tx mined with status 1 and confirmed."""

    receipt: Receipt
    nonce: int
    attempts: tuple[str, ...]  # every hash sent for this nonce, first to last
    confirmations: int
    outages: int  # times the node did not answer while waiting


@dataclass(frozen=True)
class Quote:
    """What a tx would cost if sent now (a dry run): nothing is signed or sent."""

    gas: int  # estimated gas with the 25% margin (the tx's gas limit)
    tip: int  # wei per gas
    max_fee: int  # the fee cap, wei per gas (bounded by max_fee_wei)
    base_fee: int  # the latest block's base fee, wei per gas
    nonce: int  # the nonce the tx would take
    balance: int  # the key's balance, wei

    @property
    def max_cost_wei(self) -> int:
        """The most the tx can cost: gas limit × fee cap (what the balance must cover)."""
        return self.gas * self.max_fee

    @property
    def cost_now_wei(self) -> int:
        """The cost at the current base fee: gas limit × min(base fee + tip, fee cap)."""
        return self.gas * min(self.base_fee + self.tip, self.max_fee)


@dataclass
class _Progress:
    attempts: list[Attempt] = field(default_factory=list)
    outages: int = 0
    floor: tuple[int, int] = (0, 0)  # (tip, cap) a replacement must beat: an attempt the node refused as underpriced


def _bump(value: int) -> int:
    return value * BUMP_NUMERATOR // BUMP_DENOMINATOR + 1


class TxSender:
    """Signs with one eth-account key and drives its txs to confirmation on one chain."""

    def __init__(self, eth: EthClient, key: str, chain_id: int, policy: SendPolicy,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 on_sent: Callable[[str, int], None] | None = None) -> None:
        from eth_account import Account

        self.eth = eth
        self.account = Account.from_key(key)
        self.chain_id = chain_id
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self.on_sent = on_sent  # (tx hash, attempt number from 1) after each successful broadcast

    @property
    def address(self) -> str:
        """The sending account's checksummed address."""
        return str(self.account.address)

    # ------------------------------------------------------------------ fees and signing
    def _fees(self, tip_floor: int = 0, cap_floor: int = 0) -> tuple[int, int]:
        """(tip, fee cap) for a tx sent now, at least the given floors."""
        tip = self.policy.priority_fee_wei if self.policy.priority_fee_wei is not None and not tip_floor \
            else self.eth.suggested_tip()
        tip = max(tip, tip_floor)
        cap = max(2 * self.eth.base_fee() + tip, cap_floor)
        if self.policy.max_fee_wei is not None:
            if tip > self.policy.max_fee_wei:
                raise PublicChainError(f"the tip the tx needs ({tip} wei/gas) is above max_fee_wei "
                                       f"({self.policy.max_fee_wei}); raise it or wait for cheaper blocks")
            cap = min(cap, self.policy.max_fee_wei)
        return tip, cap

    def _sign(self, to: str | None, data: bytes, gas: int, nonce: int, tip: int, cap: int) -> tuple[str, bytes]:
        tx: dict[str, Any] = {"type": 2, "chainId": self.chain_id, "nonce": nonce, "value": 0, "data": data,
                              "gas": gas, "maxPriorityFeePerGas": tip, "maxFeePerGas": cap}
        if to is not None:
            from eth_utils.address import to_checksum_address

            tx["to"] = to_checksum_address(to)  # eth-account refuses addresses without their checksum
        signed = self.account.sign_transaction(tx)
        return "0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction)

    def _broadcast(self, progress: _Progress, tx_hash: str, raw: bytes, tip: int, cap: int) -> None:
        """Send signed bytes; a node that already has them is fine. Records the attempt."""
        try:
            self.eth.send_raw(raw)
        except EthRPCError as exc:
            text = exc.message.lower()
            if "insufficient funds" in text:
                raise PublicChainError(f"the anchor key {self.address} cannot pay for the tx on chain "
                                       f"{self.chain_id}: fund it ({exc.message})") from exc
            if "already known" not in text and "known transaction" not in text:
                raise
        if not progress.attempts or progress.attempts[-1].tx_hash != tx_hash:
            progress.attempts.append(Attempt(tx_hash, raw, tip, cap, self.clock()))
            if self.on_sent is not None:
                self.on_sent(tx_hash, len(progress.attempts))

    # ------------------------------------------------------------------ sending
    def estimate(self, to: str | None, data: bytes) -> int:
        """Gas for the tx with a 25% margin; PublicChainError (with the node's reason) if it would revert."""
        tx: dict[str, Any] = {"from": self.address, "data": "0x" + data.hex(), "value": 0}
        if to is not None:
            from eth_utils.address import to_checksum_address

            tx["to"] = to_checksum_address(to)
        try:
            gas = self.eth.estimate_gas(tx)
        except EthRPCError as exc:
            raise PublicChainError(f"the tx would fail on chain {self.chain_id}: {exc.message}") from exc
        return gas * _GAS_MARGIN_NUM // _GAS_MARGIN_DEN

    def quote(self, to: str | None, data: bytes) -> Quote:
        """Gas, fees, nonce and balance of the tx as `send` would send it now; sends nothing."""
        gas = self.estimate(to, data)
        tip, cap = self._fees()
        return Quote(gas=gas, tip=tip, max_fee=cap, base_fee=self.eth.base_fee(),
                     nonce=self.eth.nonce(self.address, "pending"), balance=self.eth.balance(self.address))

    def send(self, to: str | None, data: bytes, gas: int | None = None) -> Confirmed:
        """Sign, send and follow a tx (a contract creation when `to` is None) until confirmed."""
        gas = gas if gas is not None else self.estimate(to, data)
        nonce = self.eth.nonce(self.address, "pending")
        tip, cap = self._fees()
        balance = self.eth.balance(self.address)
        if balance < gas * cap:
            raise PublicChainError(
                f"the anchor key {self.address} holds {balance} wei on chain {self.chain_id}, but the tx may cost up "
                f"to {gas * cap} wei ({gas} gas at {cap} wei/gas): fund it")
        progress = _Progress()
        tx_hash, raw = self._sign(to, data, gas, nonce, tip, cap)
        self._broadcast(progress, tx_hash, raw, tip, cap)
        log.info("sent %s (nonce %d, tip %d, cap %d)", tx_hash, nonce, tip, cap)
        return self._follow(progress, to, data, gas, nonce)

    def confirm(self, tx_hash: str) -> Confirmed:
        """Wait for confirmations of a tx someone already sent (no replacement: its bytes are not ours to resend)."""
        progress = _Progress(attempts=[Attempt(tx_hash, b"", 0, 0, self.clock())])
        return self._follow(progress, None, b"", 0, -1)

    def _mined(self, progress: _Progress) -> Receipt | None:
        for attempt in reversed(progress.attempts):
            receipt = self.eth.receipt(attempt.tx_hash)
            if receipt is not None:
                return receipt
        return None

    def _follow(self, progress: _Progress, to: str | None, data: bytes, gas: int, nonce: int) -> Confirmed:
        deadline = self.clock() + self.policy.confirm_timeout_s
        backoff = self.policy.poll_s
        resendable = nonce >= 0
        while True:
            if self.clock() > deadline:
                raise AnchorTimeoutError(
                    f"tx {progress.attempts[-1].tx_hash} was not confirmed within {self.policy.confirm_timeout_s:.0f}s "
                    f"on chain {self.chain_id}; nothing was recorded. It may still be mined: running the anchor again "
                    "finds it")
            try:
                done = self._step(progress, to, data, gas, nonce, resendable)
                backoff = self.policy.poll_s
            except PublicChainUnavailable as exc:
                progress.outages += 1
                log.warning("waiting for %s: %s", progress.attempts[-1].tx_hash, exc)
                self.sleep(backoff)
                backoff = min(backoff * 2, 8.0)
                continue
            if done is not None:
                return done
            self.sleep(self.policy.poll_s)

    def _step(self, progress: _Progress, to: str | None, data: bytes, gas: int, nonce: int,
              resendable: bool) -> Confirmed | None:
        """One look at the chain: confirmed (return it), mined but young, or not mined (resend, replace, drop)."""
        receipt = self._mined(progress)
        if receipt is not None:
            if receipt.status != 1:
                raise AnchorTxError(f"tx {receipt.tx_hash} was mined in block {receipt.block_number} but reverted "
                                    f"(status {receipt.status}); nothing was recorded")
            depth = self.eth.block_number() - receipt.block_number + 1
            if depth < self.policy.confirmations:
                return None
            if self.eth.block_hash(receipt.block_number) != receipt.block_hash:
                log.warning("block %d of %s was reorganised away; waiting again", receipt.block_number,
                            receipt.tx_hash)
                return None
            return Confirmed(receipt, nonce, tuple(a.tx_hash for a in progress.attempts), depth, progress.outages)
        if not resendable:
            return None
        if self.eth.nonce(self.address, "latest") > nonce:
            # The nonce is used. One more look (it may have been mined by us between the two calls).
            if self._mined(progress) is None:
                hashes = tuple(a.tx_hash for a in progress.attempts)
                raise TxDroppedError(f"nonce {nonce} of {self.address} was used by another tx; none of "
                                     f"{list(hashes)} will be mined", hashes)
            return None
        newest = progress.attempts[-1]
        if not self.eth.transaction_known(newest.tx_hash):
            # The node lost it (restart without its pool, eviction): the same bytes again.
            log.warning("node does not know %s any more; broadcasting it again", newest.tx_hash)
            try:
                self._broadcast(progress, newest.tx_hash, newest.raw, newest.tip, newest.max_fee)
            except EthRPCError as exc:
                # "nonce too low": the nonce was used meanwhile (the next look tells by whom);
                # "underpriced": another tx with this nonce holds the pool slot (mined: a drop;
                # still pending: outbid by the next replacement).
                text = exc.message.lower()
                if "nonce too low" not in text and "underpriced" not in text:
                    raise
            newest.sent_at = self.clock()
            return None
        if self.clock() - newest.sent_at >= self.policy.stuck_after_s:
            self._replace(progress, to, data, gas, nonce)
        return None

    def _replace(self, progress: _Progress, to: str | None, data: bytes, gas: int, nonce: int) -> None:
        """Send the same tx with the same nonce and higher fees."""
        old = progress.attempts[-1]
        min_tip, min_cap = _bump(max(old.tip, progress.floor[0])), _bump(max(old.max_fee, progress.floor[1]))
        tip, cap = self._fees(tip_floor=min_tip, cap_floor=min_cap)
        if cap < min_cap:
            raise AnchorTxError(f"tx {old.tx_hash} is stuck and replacing it needs a fee cap above max_fee_wei "
                                f"({self.policy.max_fee_wei}); nothing was recorded")
        tx_hash, raw = self._sign(to, data, gas, nonce, tip, cap)
        try:
            self._broadcast(progress, tx_hash, raw, tip, cap)
        except EthRPCError as exc:
            text = exc.message.lower()
            if "underpriced" in text:
                progress.floor = (tip, cap)  # the next look tries again, above these fees
                return
            if "nonce too low" in text:
                return  # one of our attempts was mined meanwhile; the next look finds its receipt
            raise
        log.info("replaced %s by %s (tip %d, cap %d)", old.tx_hash, tx_hash, tip, cap)
