"""Run an ASGI app on uvicorn in a background thread, with a clear error when its port is taken."""

from __future__ import annotations

import errno
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from fedledger.node.inference.errors import ServerStartError

__all__ = ["ServerThread", "serve_in_thread"]


def _bind(host: str, port: int) -> socket.socket:
    # Binding here, before uvicorn starts, turns a taken port into one clear error in the caller's thread,
    # where uvicorn would log a traceback in its own thread and exit it.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR lets a restarted node rebind past old TIME_WAIT connections; on Linux and macOS it does
    # not let two live servers share a port, so a taken port still fails.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServerStartError(f"cannot serve on {host}:{port}: the port is taken by another process; "
                                   "stop it or choose another port") from None
        raise ServerStartError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class ServerThread:
    """A uvicorn server running an app in a daemon thread; stop() shuts it down gracefully."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket) -> None:
        self._server = server
        self._thread = thread
        self._sock = sock
        address = sock.getsockname()
        self.host: str = address[0]
        self.port: int = int(address[1])

    @property
    def url(self) -> str:
        """http://host:port, ready for a client."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server thread is still serving."""
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the server stops (from stop() in another thread, or a fatal error)."""
        self._thread.join(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking connections, let in-flight requests finish, run the app's shutdown, and join."""
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():  # requests that would not finish: drop them
            self._server.force_exit = True
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
                    start_timeout: float = 15.0, **uvicorn_options: Any) -> ServerThread:
    """Serve `app` on host:port (0: a free port, see `.port`) and return once it accepts connections.

    Raises ServerStartError when the port is taken or the server does not start within `start_timeout`.
    Extra keyword arguments go to uvicorn.Config.
    """
    sock = _bind(host, port)
    uvicorn_options.setdefault("access_log", False)
    uvicorn_options.setdefault("ws", "none")  # OIP is plain HTTP; no websocket stack to load
    uvicorn_options.setdefault("timeout_graceful_shutdown", 5)
    config = uvicorn.Config(app, log_level=log_level, lifespan="on", **uvicorn_options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"fedledger-inference-{sock.getsockname()[1]}")
    handle = ServerThread(server, thread, sock)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            handle.stop(timeout=2.0)
            raise ServerStartError(f"the inference server on {handle.url} did not start "
                                   f"within {start_timeout:g} s; see the log above")
        time.sleep(0.01)
    return handle
