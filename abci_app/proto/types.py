"""Single import point for the generated ABCI protobuf classes (fails clearly if not built)."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from fedledger.abci_app.errors import Family, FedLedgerError

__all__ = [
    "ProtoNotBuiltError",
    "Duration",
    "Timestamp",
    "Request",
    "RequestEcho",
    "RequestFlush",
    "RequestInfo",
    "RequestInitChain",
    "RequestQuery",
    "RequestCheckTx",
    "RequestCommit",
    "RequestListSnapshots",
    "RequestOfferSnapshot",
    "RequestLoadSnapshotChunk",
    "RequestApplySnapshotChunk",
    "RequestPrepareProposal",
    "RequestProcessProposal",
    "RequestExtendVote",
    "RequestVerifyVoteExtension",
    "RequestFinalizeBlock",
    "Response",
    "ResponseException",
    "ResponseEcho",
    "ResponseFlush",
    "ResponseInfo",
    "ResponseInitChain",
    "ResponseQuery",
    "ResponseCheckTx",
    "ResponseCommit",
    "ResponseListSnapshots",
    "ResponseOfferSnapshot",
    "ResponseLoadSnapshotChunk",
    "ResponseApplySnapshotChunk",
    "ResponsePrepareProposal",
    "ResponseProcessProposal",
    "ResponseExtendVote",
    "ResponseVerifyVoteExtension",
    "ResponseFinalizeBlock",
    "CommitInfo",
    "ExtendedCommitInfo",
    "Event",
    "EventAttribute",
    "ExecTxResult",
    "TxResult",
    "Validator",
    "ValidatorUpdate",
    "VoteInfo",
    "ExtendedVoteInfo",
    "Misbehavior",
    "Snapshot",
    "CheckTxType",
    "MisbehaviorType",
    "ConsensusParams",
    "BlockParams",
    "EvidenceParams",
    "ValidatorParams",
    "VersionParams",
    "HashedParams",
    "ABCIParams",
    "BlockIDFlag",
    "PublicKey",
    "Proof",
    "ProofOp",
    "ProofOps",
    "App",
    "Consensus",
]


class ProtoNotBuiltError(FedLedgerError, ImportError):
    """Raised when the generated ``*_pb2`` modules are missing or unusable."""

    family = Family.CONFIG
    error_code = "PROTO_NOT_BUILT"


try:
    from fedledger.abci_app.proto.abci_pb2 import (
        CheckTxType,
        CommitInfo,
        Event,
        EventAttribute,
        ExecTxResult,
        ExtendedCommitInfo,
        ExtendedVoteInfo,
        Misbehavior,
        MisbehaviorType,
        Request,
        RequestApplySnapshotChunk,
        RequestCheckTx,
        RequestCommit,
        RequestEcho,
        RequestExtendVote,
        RequestFinalizeBlock,
        RequestFlush,
        RequestInfo,
        RequestInitChain,
        RequestListSnapshots,
        RequestLoadSnapshotChunk,
        RequestOfferSnapshot,
        RequestPrepareProposal,
        RequestProcessProposal,
        RequestQuery,
        RequestVerifyVoteExtension,
        Response,
        ResponseApplySnapshotChunk,
        ResponseCheckTx,
        ResponseCommit,
        ResponseEcho,
        ResponseException,
        ResponseExtendVote,
        ResponseFinalizeBlock,
        ResponseFlush,
        ResponseInfo,
        ResponseInitChain,
        ResponseListSnapshots,
        ResponseLoadSnapshotChunk,
        ResponseOfferSnapshot,
        ResponsePrepareProposal,
        ResponseProcessProposal,
        ResponseQuery,
        ResponseVerifyVoteExtension,
        Snapshot,
        TxResult,
        Validator,
        ValidatorUpdate,
        VoteInfo,
    )
    from fedledger.abci_app.proto.tendermint_crypto_pb2 import (
        Proof,
        ProofOp,
        ProofOps,
        PublicKey,
    )
    from fedledger.abci_app.proto.tendermint_types_pb2 import (
        ABCIParams,
        BlockIDFlag,
        BlockParams,
        ConsensusParams,
        EvidenceParams,
        HashedParams,
        ValidatorParams,
        VersionParams,
    )
    from fedledger.abci_app.proto.tendermint_version_pb2 import (
        App,
        Consensus,
    )
except ImportError as exc:  # the *_pb2 modules are build outputs, not sources
    raise ProtoNotBuiltError(
        "the ABCI protobuf modules are not generated or are stale; run `make proto` "
        f"(python -m fedledger.abci_app.proto.build): {exc}"
    ) from exc
