"""Typed read access to FedLedger state over abci_query, shared by the CLI, clients and nodes."""

from __future__ import annotations

import json
from typing import Any, Protocol, cast

from fedledger.abci_app.errors import ChainRejectedError, Code, Family
from fedledger.abci_app.modules.federation.records import (
    ContributionRecord,
    Lineage,
    RoundRecord,
    TaskRecord,
    VersionRecord,
)
from fedledger.abci_app.modules.identity.records import MemberRecord
from fedledger.abci_app.modules.secagg.records import Board
from fedledger.sdk.errors import ClientError, RPCError
from fedledger.sdk.rpc import AbciQueryResult

__all__ = ["ChainView", "NotFoundOnChain", "QuerySource"]


class NotFoundOnChain(ClientError, ChainRejectedError):
    """The queried object does not exist (yet) on chain."""

    family = Family.CHAIN
    error_code = "NOT_ON_CHAIN"


class QuerySource(Protocol):
    """What the view needs: abci_query. A node's CometRPC provides it, and so does the harness's in-process chain."""

    def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> AbciQueryResult:
        """The answer to a query of committed state."""
        ...


class ChainView:
    """Queries the application (through a node's RPC, or in process) and decodes the JSON answers."""

    def __init__(self, rpc: QuerySource) -> None:
        self.rpc = rpc

    def raw(self, path: str, prove: bool = False) -> AbciQueryResult:
        """The undecoded query answer (value, key, proof, height)."""
        res = self.rpc.abci_query(path, prove=prove)
        if res.code == Code.QUERY_NOT_FOUND:
            raise NotFoundOnChain(res.log)
        if res.code != 0:
            raise RPCError(f"query {path} failed with code {res.code}: {res.log}")
        return res

    def get(self, path: str) -> Any:
        """The decoded JSON answer of a query path."""
        return json.loads(self.raw(path).value)

    def exists(self, path: str) -> bool:
        """Whether a query path names an existing object."""
        try:
            self.raw(path)
        except NotFoundOnChain:
            return False
        return True

    # The answers are the chain's own records, typed by the modules that own them; JSON carries
    # no types, so each is cast once here, where it enters the off-chain code.
    def task(self, task_id: str) -> TaskRecord:
        """Task record."""
        return cast(TaskRecord, self.get(f"/task/{task_id}"))

    def round(self, task_id: str, number: int) -> RoundRecord:
        """Round record."""
        return cast(RoundRecord, self.get(f"/round/{task_id}/{number}"))

    def contributions(self, task_id: str, number: int) -> list[ContributionRecord]:
        """Every contribution of a round, sorted by participant key."""
        return cast(list[ContributionRecord], self.get(f"/contributions/{task_id}/{number}"))

    def version(self, task_id: str, version: int | str) -> VersionRecord:
        """A model version record (`latest` allowed)."""
        return cast(VersionRecord, self.get(f"/version/{task_id}/{version}"))

    def lineage(self, task_id: str, version: int) -> Lineage:
        """A version with its exact contributions and ancestry."""
        return cast(Lineage, self.get(f"/lineage/{task_id}/{version}"))

    def versions(self, task_id: str) -> list[VersionRecord]:
        """Every version of a task, oldest first."""
        return cast(list[VersionRecord], self.get(f"/versions/{task_id}"))

    def last_good(self, task_id: str) -> int:
        """The task's last promoted version (the lifecycle module's pointer)."""
        return int(self.get(f"/lifecycle/{task_id}")["last_good"])

    def board(self, task_id: str, number: int) -> Board:
        """A secure round's SecAgg+ posts (keys, shares, unmask), keyed by participant."""
        return cast(Board, self.get(f"/secagg/{task_id}/{number}"))

    def participant(self, key_hex: str) -> MemberRecord | None:
        """Participant record, or None if the key is not registered."""
        try:
            return cast(MemberRecord, self.get(f"/participant/{key_hex}"))
        except NotFoundOnChain:
            return None
