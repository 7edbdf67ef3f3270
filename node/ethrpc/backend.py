"""What the Ethereum JSON-RPC server needs from a FedLedger node, and its implementation over CometBFT RPC.

The server reads EVM state with `abci_query` (committed state only) and sends txs with
`broadcast_tx_sync`, wrapped in the chain's EVM envelope, so they go through CometBFT's mempool
and consensus like every other tx. Tests put an in-process fake behind the same interface.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fedledger.abci_app.errors import ChainRejectedError, UnavailableError

__all__ = ["Backend", "BackendError", "BlockInfo", "Broadcast", "CometBackend", "QueryFailed"]


class BackendError(UnavailableError, RuntimeError):
    """The node cannot be reached or answered something unusable."""

    error_code = "ETH_BACKEND"


class QueryFailed(ChainRejectedError):
    """An abci_query answered with a non-zero code."""

    error_code = "ETH_QUERY_FAILED"

    def __init__(self, code: int, log: str) -> None:
        super().__init__(f"query failed with code {code}: {log}")
        self.code = code
        self.log = log


@dataclass(frozen=True)
class BlockInfo:
    """A CometBFT block header's facts that Ethereum blocks show."""

    height: int
    hash: bytes
    parent_hash: bytes
    time_s: int


@dataclass(frozen=True)
class Broadcast:
    """CheckTx's answer to a broadcast tx."""

    code: int
    log: str


class Backend(Protocol):
    """A FedLedger node as the Ethereum JSON-RPC server sees it."""

    def latest(self) -> BlockInfo:
        """The latest committed block."""
        ...

    def block(self, height: int) -> BlockInfo | None:
        """Block `height`, or None if the node has no such block."""
        ...

    def query(self, path: str) -> Any:
        """The JSON answer of an abci_query; QueryFailed for a non-zero code."""
        ...

    def broadcast(self, tx: bytes) -> Broadcast:
        """Submit tx bytes to the mempool (broadcast_tx_sync)."""
        ...


def _unix_seconds(rfc3339: str) -> int:
    # CometBFT prints nanoseconds; datetime takes at most microseconds.
    text = rfc3339.rstrip("Z")
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    return int(datetime.fromisoformat(text + "+00:00").timestamp())


class CometBackend:
    """Backend over a node's CometBFT RPC (one HTTP client per server thread)."""

    def __init__(self, rpc_url: str, timeout: float = 10.0) -> None:
        self.rpc_url = rpc_url
        self._timeout = timeout
        self._local = threading.local()

    def _rpc(self) -> Any:
        from fedledger.sdk.rpc import CometRPC

        rpc = getattr(self._local, "rpc", None)
        if rpc is None:
            rpc = CometRPC(self.rpc_url, timeout=self._timeout)
            self._local.rpc = rpc
        return rpc

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        from fedledger.sdk.errors import RPCError

        try:
            result: dict[str, Any] = self._rpc().call(method, **params)
        except RPCError as exc:
            raise BackendError(str(exc)) from exc
        return result

    @staticmethod
    def _info(block: dict[str, Any]) -> BlockInfo:
        header = block["block"]["header"]
        parent = header.get("last_block_id", {}).get("hash") or ""
        return BlockInfo(height=int(header["height"]), hash=bytes.fromhex(block["block_id"]["hash"]),
                         parent_hash=bytes.fromhex(parent) if parent else b"\x00" * 32,
                         time_s=_unix_seconds(header["time"]))

    def latest(self) -> BlockInfo:
        """The latest committed block."""
        return self._info(self._call("block"))

    def block(self, height: int) -> BlockInfo | None:
        """Block `height`, or None if the node does not have it."""
        try:
            return self._info(self._call("block", height=str(height)))
        except BackendError as exc:
            if "must be less than or equal" in str(exc) or "height" in str(exc):
                return None
            raise

    def query(self, path: str) -> Any:
        """abci_query at the latest height; QueryFailed for a non-zero code."""
        res = self._call("abci_query", path=path, data="", prove=False, height="0")["response"]
        code = int(res.get("code", 0))
        if code != 0:
            raise QueryFailed(code, str(res.get("log", "")))
        return json.loads(base64.b64decode(res.get("value") or ""))

    def broadcast(self, tx: bytes) -> Broadcast:
        """broadcast_tx_sync: CheckTx's code and log."""
        res = self._call("broadcast_tx_sync", tx=base64.b64encode(tx).decode("ascii"))
        return Broadcast(code=int(res.get("code", 0)), log=str(res.get("log", "")))
