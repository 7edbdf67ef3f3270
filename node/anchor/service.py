"""The anchoring service: every N blocks, the Merkle root of the new checkpoints goes to the public chain, then back.

One step (`AnchorService.anchor_once`):
1. ask the permissioned chain where the last anchor ended (`/anchor/latest`), and how far
   checkpoints reach (the latest height minus one);
2. with at least `min_checkpoints` new ones, read them (up to `max_batch`) and build the tree;
3. check the public chain (chain id, contract, owner) and look for an Anchored event of exactly
   this batch among its recent logs (a run that stopped after sending finds its own tx and does
   not pay twice);
4. otherwise send `anchor(chainTag, root, from, to)` and follow it to the configured number of
   confirmations (TxSender: fees, nonce, outages, replacement), starting over with a new nonce
   if another tx takes it;
5. only then send `record_anchor` to the permissioned chain. Nothing counts as anchored before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fedledger.abci_app.binary_merkle import MerkleTree
from fedledger.node.anchor.checkpoints import SCHEME, CheckpointSource, leaves
from fedledger.node.anchor.contract import anchor_calldata, anchored_topic, chain_tag, decode_anchored
from fedledger.node.anchor.errors import AnchorTimeoutError, AnchorTxError, PublicChainUnavailable, TxDroppedError
from fedledger.node.anchor.eth import EthRPCError
from fedledger.node.anchor.public import PublicChain
from fedledger.node.anchor.sender import Confirmed

__all__ = ["AnchorResult", "AnchorService", "ChainRecorder", "Recorder"]

log = logging.getLogger(__name__)
DROP_RETRIES = 3


class Recorder(Protocol):
    """The permissioned chain's side: where anchoring stands, and recording a confirmed anchor."""

    def anchored_to(self) -> int:
        """The last anchored height (0 before the first anchor)."""
        ...

    def record(self, body: dict[str, Any]) -> int:
        """Send record_anchor and wait for it in a block; returns that block's height."""
        ...


class ChainRecorder:
    """Recorder over a FedLedger node, signing with a validator admin's key."""

    def __init__(self, submitter: Any) -> None:
        self.submitter = submitter

    def anchored_to(self) -> int:
        """to_height of /anchor/latest, or 0."""
        from fedledger.sdk.chainview import ChainView, NotFoundOnChain

        try:
            return int(ChainView(self.submitter.rpc).get("/anchor/latest")["to_height"])
        except NotFoundOnChain:
            return 0

    def record(self, body: dict[str, Any]) -> int:
        """record_anchor, waited for."""
        return int(self.submitter.send("record_anchor", body).height)

    def check_signer(self) -> None:
        """AnchorError unless the signing key is an active validator admin (before any public tx is paid for)."""
        from fedledger.abci_app.modules.anchor.handlers import ROLES
        from fedledger.node.anchor.errors import AnchorError
        from fedledger.sdk.chainview import ChainView, NotFoundOnChain

        key = self.submitter.key
        try:
            member = ChainView(self.submitter.rpc).get(f"/whois/{key.public_hex}")
        except NotFoundOnChain as exc:
            raise AnchorError(f"key {key.name} is not an enrolled member, so it cannot record anchors: admit it with "
                              f"`fedledger admit --key {key.name} --role validator-admin`") from exc
        if member.get("role") not in ROLES or member.get("status") != "active":
            raise AnchorError(f"key {key.name} is an {member.get('status')} {member.get('role')}; recording anchors "
                              f"needs role {' or '.join(ROLES)}")


@dataclass(frozen=True)
class AnchorResult:
    """One anchored and recorded batch."""

    from_height: int
    to_height: int
    root: str
    public_chain_id: int
    contract: str
    tx_hash: str
    attempts: tuple[str, ...]  # every tx hash sent for the batch (replacements, re-sends after a drop)
    block_number: int
    block_hash: str
    gas_used: int
    confirmations: int
    outages: int
    recorded_height: int
    found_existing: bool  # the batch's tx was already on the public chain (an earlier run sent it)
    confirm_seconds: float  # from reading the checkpoints to the anchor tx's last needed confirmation
    seconds: float  # from reading the checkpoints to the recorded anchor

    @property
    def checkpoints(self) -> int:
        """Heights in the batch."""
        return self.to_height - self.from_height + 1


class AnchorService:
    """Anchors the checkpoints of one permissioned chain to one public-chain contract."""

    def __init__(self, public: PublicChain, source: CheckpointSource, recorder: Recorder, *, max_batch: int = 10_000,
                 lookback_blocks: int = 10_000, on_sent: Callable[[str, int], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.public = public
        self.source = source
        self.recorder = recorder
        self.max_batch = max_batch
        self.lookback_blocks = lookback_blocks
        self.on_sent = on_sent
        self.clock = clock

    def pending(self) -> tuple[int, int]:
        """(first unanchored height, highest height with a checkpoint now)."""
        return self.recorder.anchored_to() + 1, self.source.latest_checkpoint_height()

    def _existing(self, contract: str, root: bytes, from_height: int, to_height: int) -> str | None:
        """The tx hash of an Anchored event of exactly this batch among the recent logs, or None."""
        eth = self.public.eth
        latest = eth.block_number()
        tag = chain_tag(self.source.chain_id)
        try:
            entries = eth.logs(contract, [anchored_topic(), "0x" + tag.hex()], max(0, latest - self.lookback_blocks),
                               latest)
        except EthRPCError as exc:
            # Public RPC providers cap eth_getLogs ranges; without the look-up a restarted run may pay twice.
            log.warning("cannot search recent Anchored events (%s); sending a new anchor", exc.message)
            return None
        for entry in reversed(entries):
            ev = decode_anchored(entry)
            if ev is not None and ev.root == root and (ev.from_height, ev.to_height) == (from_height, to_height):
                return entry.tx_hash
        return None

    def _send(self, contract: str, data: bytes) -> tuple[Confirmed, tuple[str, ...]]:
        sent: list[str] = []
        for attempt in range(1, DROP_RETRIES + 1):
            sender = self.public.sender(on_sent=self.on_sent)
            try:
                done = sender.send(contract, data)
                return done, (*sent, *done.attempts)
            except TxDroppedError as exc:
                sent += exc.attempts
                if attempt == DROP_RETRIES:
                    raise
                log.warning("%s; sending the anchor again with a new nonce", exc)
        raise AssertionError("unreachable")

    def anchor_once(self, min_checkpoints: int = 1) -> AnchorResult | None:
        """Anchor the next batch if at least `min_checkpoints` heights wait; None when fewer do."""
        start, top = self.pending()
        if top - start + 1 < max(1, min_checkpoints):
            return None
        to_height = min(top, start + self.max_batch - 1)
        started = self.clock()
        checkpoints = self.source.checkpoints(start, to_height)
        root = MerkleTree(leaves(checkpoints)).root
        chain_id = self.public.chain_id()
        contract = self.public.contract()
        existing = self._existing(contract, root, start, to_height)
        if existing is not None:
            log.info("batch %d..%d is already anchored by %s; waiting for its confirmations", start, to_height,
                     existing)
            done = self.public.sender().confirm(existing)
            attempts: tuple[str, ...] = (existing,)
        else:
            done, attempts = self._send(contract, anchor_calldata(self.source.chain_id, root, start, to_height))
        receipt = done.receipt
        confirmed = self.clock()
        if not any((ev := decode_anchored(x)) is not None and ev.root == root for x in receipt.logs):
            raise AnchorTxError(f"tx {receipt.tx_hash} emitted no Anchored event with root 0x{root.hex()}")
        body = {"scheme": SCHEME, "public_chain_id": chain_id, "contract": contract.lower(),
                "tx_hash": receipt.tx_hash.lower(), "block_number": receipt.block_number,
                "block_hash": receipt.block_hash.lower(), "root": "0x" + root.hex(), "from_height": start,
                "to_height": to_height}
        recorded = self.recorder.record(body)
        return AnchorResult(from_height=start, to_height=to_height, root="0x" + root.hex(), public_chain_id=chain_id,
                            contract=contract, tx_hash=receipt.tx_hash, attempts=attempts,
                            block_number=receipt.block_number, block_hash=receipt.block_hash,
                            gas_used=receipt.gas_used, confirmations=done.confirmations, outages=done.outages,
                            recorded_height=recorded, found_existing=existing is not None,
                            confirm_seconds=confirmed - started, seconds=self.clock() - started)

    def run(self, every: int, *, until: Callable[[], bool] = lambda: False, poll_s: float = 1.0,
            on_result: Callable[[AnchorResult], None] | None = None,
            on_error: Callable[[Exception], None] | None = None,
            sleep: Callable[[float], None] = time.sleep) -> None:
        """Anchor whenever `every` new checkpoints wait, until `until()` is true.

        Passing trouble (a node that does not answer, a tx not confirmed in time, nonces taken
        three times) is reported to `on_error` and retried with backoff up to a minute: nothing
        was recorded, and the next try finds an anchor tx that did get mined meanwhile. Anything
        else (configuration, a revert, a refused record) stops the loop.
        """
        from fedledger.sdk.errors import RPCUnavailableError

        if every < 1:
            raise ValueError("--every must be at least 1 block")
        backoff = poll_s
        while not until():
            try:
                result = self.anchor_once(min_checkpoints=every)
            except (PublicChainUnavailable, AnchorTimeoutError, TxDroppedError, RPCUnavailableError) as exc:
                if on_error is not None:
                    on_error(exc)
                sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            backoff = poll_s
            if result is not None:
                if on_result is not None:
                    on_result(result)
                continue
            sleep(poll_s)
