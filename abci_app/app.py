"""FedLedgerApp: maps ABCI 2.0 requests onto the state machine (one method per ABCI call)."""

from __future__ import annotations

import logging

from fedledger.abci_app.application import BaseApplication
from fedledger.abci_app.context import BlockContext, Event, TxResult, ValidatorUpdate
from fedledger.abci_app.modules.zk.params import check_startup
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.query_proofs import PROOF_OP_TYPE
from fedledger.abci_app.snapshots import Restorer, RestoreTarget, SnapshotManager, SnapshotSource
from fedledger.abci_app.state_machine import StateMachine

__all__ = ["APP_VERSION", "FedLedgerApp", "PROOF_OP_TYPE"]

log = logging.getLogger("fedledger.app")
APP_VERSION = 1
# Per-tx overhead in PrepareProposal's byte budget: protobuf tag plus length varint.
_TX_OVERHEAD = 6


def _events(events: list[Event]) -> list[pb.Event]:
    return [pb.Event(type=e.type, attributes=[pb.EventAttribute(key=k, value=v, index=True)
                                              for k, v in e.attributes]) for e in events]


def _exec_result(r: TxResult) -> pb.ExecTxResult:
    return pb.ExecTxResult(code=r.code, log=r.log, data=r.data, codespace=r.codespace, events=_events(r.events))


class FedLedgerApp(BaseApplication):
    """The FedLedger ABCI application."""

    def __init__(self, machine: StateMachine, snapshots: SnapshotManager | None = None) -> None:
        self.machine = machine
        # State sync: `snapshots` produces and serves them (None: this node offers none); any node can
        # restore one into an empty store, if its store supports restoring.
        self.snapshots = snapshots
        self._restorer: Restorer | None = None

    def info(self, req: pb.RequestInfo) -> pb.ResponseInfo:
        """Report the last committed height and app hash so CometBFT replays what is missing."""
        height = self.machine.height
        return pb.ResponseInfo(data="fedledger", version="0.1.0", app_version=APP_VERSION,
                               last_block_height=height,
                               last_block_app_hash=self.machine.app_hash if height > 0 else b"")

    def init_chain(self, req: pb.RequestInitChain) -> pb.ResponseInitChain:
        """Genesis: remember the chain id; the genesis state is committed with the first block."""
        validators = [ValidatorUpdate(pub_key=v.pub_key.ed25519, power=v.power) for v in req.validators]
        app_hash = self.machine.init_chain(req.chain_id, req.app_state_bytes, validators)
        log.info("init_chain %s, genesis app hash %s", req.chain_id, app_hash.hex())
        return pb.ResponseInitChain(app_hash=app_hash)

    def check_tx(self, req: pb.RequestCheckTx) -> pb.ResponseCheckTx:
        """Mempool filter (new txs and rechecks after each commit)."""
        r = self.machine.check_tx(req.tx, recheck=req.type == pb.CheckTxType.RECHECK)
        return pb.ResponseCheckTx(code=r.code, log=r.log, codespace=r.codespace)

    def prepare_proposal(self, req: pb.RequestPrepareProposal) -> pb.ResponsePrepareProposal:
        """Propose mempool txs in order, skipping any that fail the stateless checks, within the byte limit."""
        chosen: list[bytes] = []
        budget = req.max_tx_bytes
        used: dict[bytes, int] = {}  # per-block budgets of other tx kinds (EVM gas)
        for tx in req.txs:
            cost = len(tx) + _TX_OVERHEAD
            if cost > budget:
                break
            if self.machine.valid_for_proposal(tx) and self.machine.fits_proposal(tx, used):
                chosen.append(tx)
                budget -= cost
        return pb.ResponsePrepareProposal(txs=chosen)

    def process_proposal(self, req: pb.RequestProcessProposal) -> pb.ResponseProcessProposal:
        """Reject a block carrying a tx that no honest proposer would include (same checks as prepare)."""
        ok = all(self.machine.valid_for_proposal(tx) for tx in req.txs)
        status = pb.ResponseProcessProposal.ACCEPT if ok else pb.ResponseProcessProposal.REJECT
        return pb.ResponseProcessProposal(status=status)

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        """Execute the decided block on a working copy and return per-tx results and the app hash."""
        chain_id = self.machine.chain_id or ""
        time_ns = req.time.seconds * 1_000_000_000 + req.time.nanos
        ctx = BlockContext(height=req.height, time_ns=time_ns, block_hash=req.hash, chain_id=chain_id)
        results, app_hash = self.machine.finalize_block(ctx, list(req.txs))
        updates = [pb.ValidatorUpdate(pub_key=pb.PublicKey(ed25519=u.pub_key), power=u.power)
                   for u in self.machine.validator_updates]
        if updates:
            log.info("height %d: validator updates %s", req.height,
                     ", ".join(f"{u.pub_key.hex()[:12]}={u.power}" for u in self.machine.validator_updates))
        return pb.ResponseFinalizeBlock(tx_results=[_exec_result(r) for r in results], app_hash=app_hash,
                                        events=_events(self.machine.block_events), validator_updates=updates)

    def commit(self, req: pb.RequestCommit) -> pb.ResponseCommit:
        """Persist the block atomically."""
        self.machine.commit()
        if self.snapshots is not None and hasattr(self.machine.store, "iter_all"):
            source: SnapshotSource = self.machine.store  # type: ignore[assignment]
            m = self.snapshots.maybe_take(source)
            if m is not None:
                log.info("snapshot at height %d: %d chunks, %d bytes", m.height, len(m.chunk_hashes),
                         m.total_bytes)
        return pb.ResponseCommit(retain_height=0)

    def list_snapshots(self, req: pb.RequestListSnapshots) -> pb.ResponseListSnapshots:
        """Advertise the kept snapshots, newest first."""
        if self.snapshots is None:
            return pb.ResponseListSnapshots()
        return pb.ResponseListSnapshots(snapshots=self.snapshots.list())

    def load_snapshot_chunk(self, req: pb.RequestLoadSnapshotChunk) -> pb.ResponseLoadSnapshotChunk:
        """Serve one chunk of a kept snapshot (empty when there is no such chunk)."""
        if self.snapshots is None:
            return pb.ResponseLoadSnapshotChunk()
        return pb.ResponseLoadSnapshotChunk(chunk=self.snapshots.load_chunk(req.height, req.format, req.chunk))

    def offer_snapshot(self, req: pb.RequestOfferSnapshot) -> pb.ResponseOfferSnapshot:
        """Start restoring an offered snapshot whose manifest names the light-client-trusted app hash."""
        if not hasattr(self.machine.store, "restore"):
            return pb.ResponseOfferSnapshot(result=pb.ResponseOfferSnapshot.ABORT)
        target: RestoreTarget = self.machine.store  # type: ignore[assignment]
        self._restorer = Restorer(target)
        resp = self._restorer.offer(req)
        log.info("offered snapshot at height %d format %d: %s", req.snapshot.height, req.snapshot.format,
                 pb.ResponseOfferSnapshot.Result.Name(resp.result))
        return resp

    def apply_snapshot_chunk(self, req: pb.RequestApplySnapshotChunk) -> pb.ResponseApplySnapshotChunk:
        """Verify one chunk; after the last, the store holds the trusted state and the machine reloads."""
        if self._restorer is None:
            return pb.ResponseApplySnapshotChunk(result=pb.ResponseApplySnapshotChunk.ABORT)
        resp = self._restorer.apply(req)
        if self._restorer.restored_height:
            self.machine.after_restore()
            # The restored chain may pin a zk SRS: like at process start, refuse to go on without it
            # rather than diverge on the first proof (the RuntimeError stops this node).
            check_startup(self.machine.store)
            log.info("restored state at height %d, app hash %s", self.machine.height,
                     self.machine.app_hash.hex())
            self._restorer = None
        return resp

    def query(self, req: pb.RequestQuery) -> pb.ResponseQuery:
        """Read committed state; when asked to prove, one ProofOp per record the answer was derived from."""
        if req.height not in (0, self.machine.height):
            return pb.ResponseQuery(code=20, log=f"only the latest height ({self.machine.height}) can be queried",
                                    codespace="fedledger", height=self.machine.height)
        r = self.machine.query(req.path, req.data, req.prove)
        resp = pb.ResponseQuery(code=r.code, log=r.log, key=r.key, value=r.value, height=r.height,
                                codespace=r.codespace)
        for record in r.proofs:
            resp.proof_ops.ops.append(pb.ProofOp(type=PROOF_OP_TYPE, key=record.key, data=record.encode()))
        return resp
