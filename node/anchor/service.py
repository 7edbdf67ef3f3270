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

`AnchorService.plan` is the dry run of that step: the batch, its gas and its cost, nothing sent.

`AnchorService.check` looks for reorgs of the public chain after the fact: for every recorded
anchor (on this chain and contract) it re-reads the receipt of its tx. A receipt in the recorded
block, which is still canonical, is fine. A reorg that removed the block either re-included the
tx elsewhere (it is waited for to N confirmations and the anchor is pointed at the new block) or
lost it (the batch, whose root is rebuilt from the checkpoints and must equal the recorded one,
is anchored again with a new tx). Either way `reanchor` records the new tx on the permissioned
chain, keeping the replaced one in the record.
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
from fedledger.node.anchor.sender import Confirmed, Quote

__all__ = ["AnchorCheck", "AnchorPlan", "AnchorResult", "AnchorService", "ChainRecorder", "Recorder"]

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

    def anchors(self) -> list[dict[str, Any]]:
        """Every recorded anchor, oldest first (the chain's anchor records)."""
        ...

    def reanchor(self, body: dict[str, Any]) -> int:
        """Send reanchor (record_anchor's fields plus seq) and wait for it in a block; returns that block's height."""
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

    def anchors(self) -> list[dict[str, Any]]:
        """Every anchor record, read page by page from /anchors/FROM."""
        from fedledger.sdk.chainview import ChainView

        view = ChainView(self.submitter.rpc)
        out: list[dict[str, Any]] = []
        while True:
            page = view.get(f"/anchors/{len(out) + 1}")
            out += page["anchors"]
            if not page["anchors"] or len(out) >= int(page["count"]):
                return out

    def reanchor(self, body: dict[str, Any]) -> int:
        """reanchor, waited for."""
        return int(self.submitter.send("reanchor", body).height)

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


@dataclass(frozen=True)
class AnchorPlan:
    """A dry run: the batch that would be anchored now and what its tx would cost. Nothing was sent."""

    from_height: int
    to_height: int
    root: str
    public_chain_id: int
    contract: str
    quote: Quote


@dataclass(frozen=True)
class AnchorCheck:
    """One recorded anchor, re-read on the public chain."""

    seq: int
    from_height: int
    to_height: int
    status: str  # "ok" (its block is canonical), "moved" (a reorg re-included its tx), "reanchored" (sent again)
    tx_hash: str  # the tx backing the anchor now
    block_number: int
    replaced_tx_hash: str | None = None  # the tx it backed before (moved: the same hash, in another block)
    recorded_height: int | None = None  # where the reanchor was recorded


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

    def _batch(self, min_checkpoints: int) -> tuple[int, int, bytes] | None:
        """(from, to, Merkle root) of the next batch, or None when fewer than `min_checkpoints` heights wait."""
        start, top = self.pending()
        if top - start + 1 < max(1, min_checkpoints):
            return None
        to_height = min(top, start + self.max_batch - 1)
        return start, to_height, MerkleTree(leaves(self.source.checkpoints(start, to_height))).root

    def plan(self, min_checkpoints: int = 1) -> AnchorPlan | None:
        """The dry run of `anchor_once`: the next batch, its gas, fees and cost; sends nothing. None: nothing waits."""
        batch = self._batch(min_checkpoints)
        if batch is None:
            return None
        start, to_height, root = batch
        contract = self.public.contract()
        quote = self.public.sender().quote(contract, anchor_calldata(self.source.chain_id, root, start, to_height))
        return AnchorPlan(from_height=start, to_height=to_height, root="0x" + root.hex(),
                          public_chain_id=self.public.chain_id(), contract=contract, quote=quote)

    def check(self, last: int | None = None) -> list[AnchorCheck]:
        """Re-read the recorded anchors (the `last` ones, default all) and re-anchor those a reorg removed.

        Only anchors of this public chain and contract are checked (others cannot be read here).
        """
        chain_id = self.public.chain_id()
        contract = self.public.contract()
        records = [r for r in self.recorder.anchors()
                   if int(r["public_chain_id"]) == chain_id and str(r["contract"]).lower() == contract.lower()]
        if last is not None:
            records = records[-last:] if last > 0 else []
        return [self._check_one(r, contract) for r in records]

    def _check_one(self, rec: dict[str, Any], contract: str) -> AnchorCheck:
        eth = self.public.eth
        seq, lo, hi = int(rec["seq"]), int(rec["from_height"]), int(rec["to_height"])
        old_tx, old_block = str(rec["tx_hash"]), str(rec["block_hash"])
        receipt = eth.receipt(old_tx)
        if receipt is not None and receipt.block_hash.lower() == old_block \
                and (eth.block_hash(receipt.block_number) or "").lower() == old_block:
            return AnchorCheck(seq, lo, hi, "ok", old_tx, receipt.block_number)
        root = MerkleTree(leaves(self.source.checkpoints(lo, hi))).root
        if "0x" + root.hex() != rec["root"]:
            raise AnchorTxError(f"anchor {seq} records root {rec['root']} for heights {lo}..{hi}, but its checkpoints "
                                f"give 0x{root.hex()}; not re-anchoring a root the chain does not back")
        if receipt is not None or eth.transaction_known(old_tx):
            # The reorg re-included the tx (or it waits in the pool to be): follow it to N confirmations.
            log.warning("anchor %d: tx %s left block %s; waiting for it in its new block", seq, old_tx, old_block)
            done = self.public.sender().confirm(old_tx)
            status = "moved"
        else:
            log.warning("anchor %d: tx %s is gone from the public chain (reorg); anchoring heights %d..%d again",
                        seq, old_tx, lo, hi)
            done, _ = self._send(contract, anchor_calldata(self.source.chain_id, root, lo, hi))
            status = "reanchored"
        new = done.receipt
        if new.tx_hash.lower() == old_tx and new.block_hash.lower() == old_block:
            return AnchorCheck(seq, lo, hi, "ok", old_tx, new.block_number)  # it was a slow node, not a reorg
        body = {"seq": seq, "scheme": rec["scheme"], "public_chain_id": int(rec["public_chain_id"]),
                "contract": str(rec["contract"]).lower(), "tx_hash": new.tx_hash.lower(),
                "block_number": new.block_number, "block_hash": new.block_hash.lower(), "root": rec["root"],
                "from_height": lo, "to_height": hi}
        recorded = self.recorder.reanchor(body)
        return AnchorCheck(seq, lo, hi, status, new.tx_hash.lower(), new.block_number, replaced_tx_hash=old_tx,
                           recorded_height=recorded)

    def anchor_once(self, min_checkpoints: int = 1) -> AnchorResult | None:
        """Anchor the next batch if at least `min_checkpoints` heights wait; None when fewer do."""
        started = self.clock()
        batch = self._batch(min_checkpoints)
        if batch is None:
            return None
        start, to_height, root = batch
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
            sleep: Callable[[float], None] = time.sleep, check_every_s: float | None = None, check_last: int = 10,
            on_check: Callable[[AnchorCheck], None] | None = None) -> None:
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
        checked_at: float | None = None
        while not until():
            try:
                if check_every_s is not None and (checked_at is None or self.clock() - checked_at >= check_every_s):
                    for found in self.check(last=check_last):
                        if found.status != "ok" and on_check is not None:
                            on_check(found)
                    checked_at = self.clock()
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
