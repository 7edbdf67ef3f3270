"""A small typed client for CometBFT's JSON-RPC (HTTP) and event subscriptions (websocket)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from fedledger.sdk.errors import RPCError, RPCUnavailableError

__all__ = ["AbciQueryResult", "CometRPC", "subscribe"]


@dataclass(frozen=True)
class AbciQueryResult:
    """The decoded answer of /abci_query, with the path and data that were asked.

    `proof_ops` holds every ProofOp as (type, key, data); `proof` is the first op's data.
    `path` and `data` come from the request, never from the node, so a proof check knows what
    question the answer must answer.
    """

    code: int
    log: str
    key: bytes
    value: bytes
    proof: bytes
    height: int
    path: str = ""
    data: bytes = b""
    proof_ops: tuple[tuple[str, bytes, bytes], ...] = ()


class CometRPC:
    """Synchronous CometBFT RPC client with short timeouts and clear errors for a dead node."""

    def __init__(self, url: str = "http://127.0.0.1:26601", timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)
        self._id = 0

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> CometRPC:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One JSON-RPC call; returns the `result` object."""
        self._id += 1
        try:
            resp = self._http.post(self.url, json={"jsonrpc": "2.0", "id": self._id, "method": method,
                                                   "params": params})
        except httpx.TransportError as exc:
            raise RPCUnavailableError(
                f"no CometBFT node answers at {self.url} ({exc.__class__.__name__}); is the localnet up? "
                "Check with `fedledger localnet status`") from exc
        try:
            payload = resp.json()
        except json.JSONDecodeError as exc:
            raise RPCError(f"{self.url} answered HTTP {resp.status_code} with non-JSON content") from exc
        if "error" in payload:
            err = payload["error"]
            raise RPCError(f"{method} failed: {err.get('message', '')} {err.get('data', '')}".strip())
        result: dict[str, Any] = payload["result"]
        return result

    def status(self) -> dict[str, Any]:
        """/status: node info and latest block."""
        return self.call("status")

    def height(self) -> int:
        """Latest block height the node knows."""
        return int(self.status()["sync_info"]["latest_block_height"])

    def broadcast_tx_sync(self, tx: bytes) -> dict[str, Any]:
        """Submit a tx and wait for its CheckTx result only."""
        return self.call("broadcast_tx_sync", tx=base64.b64encode(tx).decode())

    def tx(self, tx_hash: str) -> dict[str, Any] | None:
        """The executed tx by hash, or None while it is not in a block yet."""
        try:
            return self.call("tx", hash=base64.b64encode(bytes.fromhex(tx_hash)).decode())
        except RPCError as exc:
            if "not found" in str(exc):
                return None
            raise

    def abci_query(self, path: str, data: bytes = b"", prove: bool = False, height: int = 0) -> AbciQueryResult:
        """Query application state at the latest committed height."""
        res = self.call("abci_query", path=path, data=data.hex(), prove=prove, height=str(height))["response"]
        ops = tuple((str(op.get("type", "")), base64.b64decode(op.get("key") or ""),
                     base64.b64decode(op.get("data") or ""))
                    for op in (res.get("proofOps") or {}).get("ops") or [])
        return AbciQueryResult(
            code=int(res.get("code", 0)), log=res.get("log", ""),
            key=base64.b64decode(res.get("key") or ""), value=base64.b64decode(res.get("value") or ""),
            proof=ops[0][2] if ops else b"", height=int(res.get("height", 0)),
            path=path, data=data, proof_ops=ops,
        )

    def block(self, height: int | None = None) -> dict[str, Any]:
        """/block at height (latest if None)."""
        return self.call("block", **({"height": str(height)} if height is not None else {}))

    def commit(self, height: int) -> dict[str, Any]:
        """/commit: the signed header at height."""
        return self.call("commit", height=str(height))


def _ws_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/") + "/websocket"


async def subscribe(rpc_url: str, query: str) -> AsyncIterator[dict[str, Any]]:
    """Yield CometBFT events matching query (e.g. "tm.event='Tx' AND fl.task='digits'")."""
    import websockets

    try:
        conn = await websockets.connect(_ws_url(rpc_url), max_size=1 << 24, open_timeout=10)
    except OSError as exc:
        raise RPCUnavailableError(f"cannot open the event websocket at {_ws_url(rpc_url)}: {exc}") from exc
    from websockets.exceptions import ConnectionClosed

    try:
        async with conn:
            await conn.send(json.dumps({"jsonrpc": "2.0", "method": "subscribe", "id": 1,
                                        "params": {"query": query}}))
            async for message in conn:
                payload = json.loads(message)
                if "error" in payload:
                    raise RPCError(f"subscribe failed: {payload['error']}")
                result = payload.get("result") or {}
                if result.get("data"):
                    yield result
    except ConnectionClosed as exc:
        # A node going down mid-stream is the same condition as one that never answered: callers resubscribe.
        raise RPCUnavailableError(f"the event websocket at {_ws_url(rpc_url)} closed: {exc}") from exc
