"""The HTTP side of a node's Ethereum JSON-RPC: JSON-RPC 2.0 over POST, single calls and batches."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fedledger.node.ethrpc.api import EthApi, RpcError

__all__ = ["EthRpcServer", "MAX_BATCH", "MAX_BODY_BYTES", "dispatch"]

log = logging.getLogger("fedledger.ethrpc")
MAX_BODY_BYTES = 1 << 20
MAX_BATCH = 100


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": err}


def _one(api: EthApi, request: Any) -> dict[str, Any]:
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        return _error(request.get("id") if isinstance(request, dict) else None, -32600,
                      "invalid request: want {jsonrpc: '2.0', id, method, params}")
    request_id = request.get("id")
    try:
        result = api.handle(request["method"], request.get("params"))
    except RpcError as exc:
        return _error(request_id, exc.code, exc.message, exc.data)
    except Exception as exc:  # noqa: BLE001 - one bad call must not take the server down
        log.exception("internal error in %s", request["method"])
        return _error(request_id, -32603, f"internal error: {type(exc).__name__}: {exc}")
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def dispatch(api: EthApi, body: bytes) -> Any:
    """The JSON response to a request body (a call or a batch of calls)."""
    try:
        request = json.loads(body)
    except ValueError:
        return _error(None, -32700, "parse error: the body is not JSON")
    if isinstance(request, list):
        if not request or len(request) > MAX_BATCH:
            return _error(None, -32600, f"a batch holds 1..{MAX_BATCH} calls")
        return [_one(api, r) for r in request]
    return _one(api, request)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        """One JSON-RPC request or batch."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(413, _error(None, -32600, f"request larger than {MAX_BODY_BYTES} bytes"))
            return
        self._reply(200, dispatch(self.server.api, self.rfile.read(length)))

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        """A short description, so that a browser or curl shows what this port is."""
        self._reply(200, {"service": "FedLedger Ethereum JSON-RPC", "methods": sorted(self.server.api.methods)})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: EthApi) -> None:
        self.api = api
        super().__init__(address, _Handler)


class EthRpcServer:
    """A JSON-RPC server on host:port answering from `api`; start() serves in a thread, stop() ends it."""

    def __init__(self, api: EthApi, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), api)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the chosen one when 0 was asked)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """http://host:port."""
        host = self._server.server_address[0]
        return f"http://{host if isinstance(host, str) else host.decode()}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="ethrpc", daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in this thread until shutdown() is called from another."""
        self._server.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
