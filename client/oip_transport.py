"""The client's HTTP transport to inference nodes: stdlib keep-alive connections, one per thread and node.

The fan-out of a consensus-verified request sends k small requests and waits for all of them, so
the client's per-request cost adds up k times on a machine with few cores. Python's own
http.client costs a fraction of a full-featured client per call; each worker thread keeps one
persistent connection per node, reopened once if the node closed it.
"""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlsplit

from fedledger.abci_app.errors import UnavailableError

__all__ = ["OIPTransport", "TransportError"]


class TransportError(UnavailableError):
    """The node could not be reached, or the connection broke mid-request."""

    error_code = "NODE_UNREACHABLE"


class OIPTransport:
    """POST and GET to node endpoints (base URLs) with per-thread persistent connections."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self, endpoint: str) -> http.client.HTTPConnection:
        pool: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        conn = pool.get(endpoint)
        if conn is None:
            parts = urlsplit(endpoint)
            cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = cls(parts.hostname or "127.0.0.1", parts.port, timeout=self.timeout)
            pool[endpoint] = conn
        return conn

    def request(self, endpoint: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body) of one request to `endpoint` + `path`; TransportError when the node cannot be reached."""
        prefix = urlsplit(endpoint).path.rstrip("/")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            conn = self._connection(endpoint)
            try:
                conn.request(method, prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.pool.pop(endpoint, None)
                if attempt == 1 or isinstance(exc, TimeoutError):
                    raise TransportError(f"{endpoint}: {exc.__class__.__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close this thread's connections (other threads' close when the threads end)."""
        for conn in self._local.__dict__.get("pool", {}).values():
            conn.close()
        self._local.__dict__["pool"] = {}
