"""Typed read access to FedLedger state over abci_query, shared by the CLI, clients and nodes."""

from __future__ import annotations

import json
from typing import Any

from fedledger.abci_app.errors import Code
from fedledger.sdk.errors import ClientError, RPCError
from fedledger.sdk.rpc import AbciQueryResult, CometRPC

__all__ = ["ChainView", "NotFoundOnChain"]


class NotFoundOnChain(ClientError):
    """The queried object does not exist (yet) on chain."""


class ChainView:
    """Queries the application through a node's RPC and decodes the JSON answers."""

    def __init__(self, rpc: CometRPC) -> None:
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

    def task(self, task_id: str) -> dict[str, Any]:
        """Task record."""
        result: dict[str, Any] = self.get(f"/task/{task_id}")
        return result

    def round(self, task_id: str, rnd: int) -> dict[str, Any]:
        """Round record."""
        result: dict[str, Any] = self.get(f"/round/{task_id}/{rnd}")
        return result

    def contributions(self, task_id: str, rnd: int) -> list[dict[str, Any]]:
        """Every contribution of a round, sorted by participant key."""
        result: list[dict[str, Any]] = self.get(f"/contributions/{task_id}/{rnd}")
        return result

    def version(self, task_id: str, version: int | str) -> dict[str, Any]:
        """A model version record (`latest` allowed)."""
        result: dict[str, Any] = self.get(f"/version/{task_id}/{version}")
        return result

    def lineage(self, task_id: str, version: int) -> dict[str, Any]:
        """A version with its exact contributions and ancestry."""
        result: dict[str, Any] = self.get(f"/lineage/{task_id}/{version}")
        return result

    def participant(self, key_hex: str) -> dict[str, Any] | None:
        """Participant record, or None if the key is not registered."""
        try:
            result: dict[str, Any] = self.get(f"/participant/{key_hex}")
        except NotFoundOnChain:
            return None
        return result
