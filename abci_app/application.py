"""Base class for ABCI 2.0 applications: one overridable method per ABCI call, with safe defaults."""

from __future__ import annotations

from fedledger.abci_app.proto import types as pb

__all__ = ["CODE_OK", "BaseApplication", "tx_proto_size", "uvarint_size"]

#: Result code meaning success in CheckTx, ExecTxResult and Query.
CODE_OK = 0


def uvarint_size(value: int) -> int:
    """Return how many bytes the protobuf unsigned varint encoding of ``value`` takes."""
    if value < 0:
        raise ValueError(f"uvarint_size needs a non-negative integer, got {value}")
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def tx_proto_size(tx: bytes) -> int:
    """Return the bytes ``tx`` occupies inside a block's ``Data.txs`` (tag + length + payload).

    CometBFT checks the PrepareProposal result against ``max_tx_bytes`` with this per-tx size
    (``types.ComputeProtoSizeForTxs``), so counting raw lengths alone could overshoot the limit.
    """
    return 1 + uvarint_size(len(tx)) + len(tx)


class BaseApplication:
    """An ABCI application whose every call has a harmless default.

    Subclasses override the calls they care about. Each method receives the request message and
    must return the matching response message; the server calls them one at a time on its event
    loop, so a method runs atomically with respect to every other call. Echo and Flush are
    answered by the server itself.
    """

    # -- info/query connection ---------------------------------------------------------------

    def info(self, req: pb.RequestInfo) -> pb.ResponseInfo:
        """Report the last committed height and app hash (default: a fresh, empty state)."""
        return pb.ResponseInfo()

    def query(self, req: pb.RequestQuery) -> pb.ResponseQuery:
        """Answer a read-only query against committed state (default: empty OK answer)."""
        return pb.ResponseQuery(code=CODE_OK)

    # -- mempool connection -----------------------------------------------------------------

    def check_tx(self, req: pb.RequestCheckTx) -> pb.ResponseCheckTx:
        """Decide whether a transaction may enter the mempool (default: accept everything)."""
        return pb.ResponseCheckTx(code=CODE_OK)

    # -- consensus connection ---------------------------------------------------------------

    def init_chain(self, req: pb.RequestInitChain) -> pb.ResponseInitChain:
        """Initialise state from genesis (default: keep genesis validators and parameters)."""
        return pb.ResponseInitChain()

    def prepare_proposal(self, req: pb.RequestPrepareProposal) -> pb.ResponsePrepareProposal:
        """Choose the block's transactions: by default the mempool order, cut at ``max_tx_bytes``.

        The cut stops at the first transaction that no longer fits, so a later smaller one is
        not pulled forward (the order of transactions stays the mempool's order).
        """
        chosen: list[bytes] = []
        used = 0
        for tx in req.txs:
            used += tx_proto_size(tx)
            if used > req.max_tx_bytes:
                break
            chosen.append(tx)
        return pb.ResponsePrepareProposal(txs=chosen)

    def process_proposal(self, req: pb.RequestProcessProposal) -> pb.ResponseProcessProposal:
        """Vote on a proposed block (default: accept)."""
        return pb.ResponseProcessProposal(status=pb.ResponseProcessProposal.ACCEPT)

    def extend_vote(self, req: pb.RequestExtendVote) -> pb.ResponseExtendVote:
        """Attach application data to this node's precommit (default: none)."""
        return pb.ResponseExtendVote()

    def verify_vote_extension(
        self, req: pb.RequestVerifyVoteExtension
    ) -> pb.ResponseVerifyVoteExtension:
        """Check another validator's vote extension (default: accept)."""
        return pb.ResponseVerifyVoteExtension(status=pb.ResponseVerifyVoteExtension.ACCEPT)

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        """Execute a decided block (default: every transaction succeeds, state unchanged)."""
        return pb.ResponseFinalizeBlock(tx_results=[pb.ExecTxResult(code=CODE_OK) for _ in req.txs])

    def commit(self, req: pb.RequestCommit) -> pb.ResponseCommit:
        """Persist the state produced by the last FinalizeBlock (default: nothing to persist)."""
        return pb.ResponseCommit()

    # -- snapshot connection ----------------------------------------------------------------

    def list_snapshots(self, req: pb.RequestListSnapshots) -> pb.ResponseListSnapshots:
        """List the snapshots this node can serve (default: none)."""
        return pb.ResponseListSnapshots()

    def offer_snapshot(self, req: pb.RequestOfferSnapshot) -> pb.ResponseOfferSnapshot:
        """Decide whether to restore from an offered snapshot (default: state sync unsupported)."""
        return pb.ResponseOfferSnapshot(result=pb.ResponseOfferSnapshot.ABORT)

    def load_snapshot_chunk(
        self, req: pb.RequestLoadSnapshotChunk
    ) -> pb.ResponseLoadSnapshotChunk:
        """Return one chunk of a local snapshot (default: empty, as no snapshots exist)."""
        return pb.ResponseLoadSnapshotChunk()

    def apply_snapshot_chunk(
        self, req: pb.RequestApplySnapshotChunk
    ) -> pb.ResponseApplySnapshotChunk:
        """Apply one chunk of a snapshot being restored (default: abort the restore)."""
        return pb.ResponseApplySnapshotChunk(result=pb.ResponseApplySnapshotChunk.ABORT)
