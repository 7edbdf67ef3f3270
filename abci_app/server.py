"""Asyncio ABCI socket server for CometBFT v0.38: uvarint-framed Request/Response protobufs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from fedledger.abci_app.application import BaseApplication
from fedledger.abci_app.errors import ConfigError, ProtocolError
from fedledger.abci_app.proto import types as pb

__all__ = [
    "ABCIAddressError",
    "ABCIServer",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FrameDecoder",
    "FrameError",
    "decode_uvarint",
    "ListenAddress",
    "encode_uvarint",
    "frame_message",
    "parse_address",
    "serve",
]

logger = logging.getLogger(__name__)

#: Largest request frame accepted. CometBFT caps a block at 100 MiB but defaults to ~21 MiB;
#: FedLedger's transactions are small, so 64 MiB leaves ample room while bounding memory.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

# Responses are written to the socket on Flush (as the Go server does) or once this many bytes
# are pending, so a long pipelined burst of CheckTx cannot grow the buffer without bound.
_WRITE_THRESHOLD = 1024 * 1024
_READ_CHUNK = 256 * 1024
_MAX_UVARINT_BYTES = 10  # a uint64 needs at most ten 7-bit groups

# ABCI calls forwarded to the application: request oneof name -> expected response class. The
# method on BaseApplication and the Response oneof member carry the same name as the request.
_APP_CALLS: dict[str, type[Message]] = {
    "info": pb.ResponseInfo,
    "init_chain": pb.ResponseInitChain,
    "query": pb.ResponseQuery,
    "check_tx": pb.ResponseCheckTx,
    "commit": pb.ResponseCommit,
    "list_snapshots": pb.ResponseListSnapshots,
    "offer_snapshot": pb.ResponseOfferSnapshot,
    "load_snapshot_chunk": pb.ResponseLoadSnapshotChunk,
    "apply_snapshot_chunk": pb.ResponseApplySnapshotChunk,
    "prepare_proposal": pb.ResponsePrepareProposal,
    "process_proposal": pb.ResponseProcessProposal,
    "extend_vote": pb.ResponseExtendVote,
    "verify_vote_extension": pb.ResponseVerifyVoteExtension,
    "finalize_block": pb.ResponseFinalizeBlock,
}


class FrameError(ProtocolError):
    """Raised for a malformed or oversized frame; the connection that sent it is closed."""

    error_code = "ABCI_FRAME"


class ABCIAddressError(ConfigError):
    """Raised for a listen address that is not ``tcp://host:port`` or ``unix://path``."""

    error_code = "ABCI_ADDRESS"


def encode_uvarint(value: int) -> bytes:
    """Encode ``value`` (0 <= value < 2**64) as a protobuf unsigned varint."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"uvarint value out of range [0, 2**64): {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes | bytearray, pos: int = 0) -> tuple[int, int] | None:
    """Decode the protobuf unsigned varint starting at ``data[pos]``.

    Returns ``(value, position after the varint)``, or None when ``data`` ends before the varint
    does. Raises :class:`FrameError` for a varint that is longer than ten bytes or exceeds 64
    bits (the same limits as Go's ``binary.ReadUvarint``, which CometBFT uses).
    """
    value = 0
    shift = 0
    end = len(data)
    while pos < end:
        byte = data[pos]
        pos += 1
        if shift == 63 and byte > 1:
            # The tenth byte may only carry the 64th bit; anything else is overflow or an
            # eleventh byte, so this one check also bounds the prefix at ten bytes.
            raise FrameError(f"length prefix overflows 64 bits or exceeds {_MAX_UVARINT_BYTES} bytes")
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    return None


def frame_message(message: Message) -> bytes:
    """Serialize ``message`` and prefix it with its uvarint length (one ABCI frame)."""
    payload = message.SerializeToString()
    return encode_uvarint(len(payload)) + payload


class FrameDecoder:
    """Incrementally splits a byte stream into uvarint-length-prefixed frames.

    Bytes arrive with :meth:`feed` in arbitrary pieces (a header or body may be split across
    reads); :meth:`next_frame` returns each complete payload once, in order.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_size <= 0:
            raise ValueError(f"max_size must be positive, got {max_size}")
        self._max_size = max_size
        self._buf = bytearray()
        self._pos = 0  # start of the first unconsumed byte in _buf

    @property
    def buffered(self) -> int:
        """Number of received bytes not yet returned as part of a frame."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        if self._pos:
            # Drop consumed frames once per read rather than once per frame (cheap compaction).
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def next_frame(self) -> bytes | None:
        """Return the next complete payload, or None until more bytes are fed.

        Raises :class:`FrameError` as soon as the length prefix is invalid or announces more
        than ``max_size`` bytes, without waiting for the body.
        """
        header = decode_uvarint(self._buf, self._pos)
        if header is None:
            return None
        length, start = header
        if length > self._max_size:
            raise FrameError(f"frame announces {length} bytes, above the {self._max_size}-byte limit")
        end = start + length
        if end > len(self._buf):
            return None
        self._pos = end
        return bytes(self._buf[start:end])


@dataclass(frozen=True)
class ListenAddress:
    """A parsed listen address: ``host``/``port`` for TCP or ``path`` for a Unix socket."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def parse_address(address: str) -> ListenAddress:
    """Parse ``tcp://host:port`` (IPv6 hosts in brackets) or ``unix://path``."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        raise ABCIAddressError(f"ABCI address {address!r} lacks a scheme; use tcp://host:port or unix://path")
    if scheme == "unix":
        if not rest:
            raise ABCIAddressError(f"ABCI address {address!r} has an empty socket path")
        return ListenAddress("unix", path=rest)
    if scheme != "tcp":
        raise ABCIAddressError(f"ABCI address {address!r}: scheme must be tcp or unix, not {scheme!r}")
    host, colon, port_text = rest.rpartition(":")
    if not colon or not host or not port_text.isdigit():
        raise ABCIAddressError(f"ABCI address {address!r} is not of the form tcp://host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if port > 65535:
        raise ABCIAddressError(f"ABCI address {address!r}: port {port} is out of range")
    return ListenAddress("tcp", host=host, port=port)


def _error_response(text: str) -> pb.Response:
    return pb.Response(exception=pb.ResponseException(error=text))


class ABCIServer:
    """Serves one :class:`BaseApplication` to every ABCI connection CometBFT opens.

    CometBFT opens four connections (consensus, mempool, query, snapshot); all share the
    application. Requests are decoded and answered on the event loop by synchronous handlers, so
    each call runs to completion before any other begins, whatever connection it came from.
    """

    def __init__(
        self,
        app: BaseApplication,
        address: str,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if max_message_size <= 0:
            raise ValueError(f"max_message_size must be positive, got {max_message_size}")
        self._app = app
        self._address = parse_address(address)
        self._max_message_size = max_message_size
        self._handlers: dict[str, tuple[Callable[[Any], Message], type[Message]]] = {}
        for name, response_type in _APP_CALLS.items():
            method = getattr(app, name, None)
            if not callable(method):
                raise TypeError(f"application {type(app).__name__} has no callable {name}()")
            self._handlers[name] = (method, response_type)
        self._server: asyncio.Server | None = None
        self._bound: ListenAddress | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    @property
    def bound_address(self) -> str:
        """The address actually listened on (with the real port when 0 was requested)."""
        if self._bound is None:
            raise RuntimeError("ABCIServer is not started")
        return str(self._bound)

    async def start(self) -> None:
        """Bind the listening socket and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("ABCIServer is already started")
        addr = self._address
        if addr.scheme == "unix":
            # asyncio removes a stale socket file itself but refuses to replace other files.
            self._server = await asyncio.start_unix_server(
                self._on_connection, path=addr.path, limit=_READ_CHUNK
            )
            self._bound = addr
        else:
            self._server = await asyncio.start_server(
                self._on_connection, host=addr.host, port=addr.port, limit=_READ_CHUNK
            )
            sockname = self._server.sockets[0].getsockname()
            self._bound = ListenAddress("tcp", host=str(sockname[0]), port=int(sockname[1]))
        logger.info("ABCI server listening on %s", self._bound)

    async def stop(self) -> None:
        """Stop accepting, close every open connection and release the address."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
        if self._address.scheme == "unix":
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISSOCK(os.stat(self._address.path).st_mode):
                    os.unlink(self._address.path)
        logger.info("ABCI server on %s stopped", self._bound)

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until cancelled, then stop."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or self._server is None:
            # Accepted just before stop(): do not start serving on a stopped server.
            writer.close()
            return
        self._connections.add(task)
        conn_id = next(self._ids)
        peer = writer.get_extra_info("peername") or self._address.path or "?"
        logger.info("ABCI connection #%d opened from %s", conn_id, peer)
        reason = "closed by peer"
        try:
            await self._pump(reader, writer)
        except FrameError as exc:
            reason = f"bad frame: {exc}"
            logger.error("ABCI connection #%d: %s; closing it", conn_id, exc)
        except OSError as exc:  # reset or broken pipe from the peer
            reason = f"socket error: {exc}"
        except asyncio.CancelledError:
            # Only stop() cancels these tasks. Ending normally instead of re-raising keeps
            # asyncio's stream callback (Python 3.11) from logging the cancellation as an error.
            reason = "server stopping"
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._connections.discard(task)
            logger.info("ABCI connection #%d closed (%s)", conn_id, reason)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder(self._max_message_size)
        pending = bytearray()
        while True:
            data = await reader.read(_READ_CHUNK)
            if not data:
                if pending:
                    writer.write(pending)
                    await writer.drain()
                return
            decoder.feed(data)
            while (payload := decoder.next_frame()) is not None:
                flush = self._respond(payload, pending)
                if flush or len(pending) >= _WRITE_THRESHOLD:
                    # Hand over a fresh buffer: the transport may keep a reference to this one.
                    writer.write(pending)
                    pending = bytearray()
                    await writer.drain()

    def _respond(self, payload: bytes, out: bytearray) -> bool:
        """Decode one request, answer it into ``out``; return True when it was a Flush."""
        try:
            request = pb.Request.FromString(payload)
        except DecodeError as exc:
            raise FrameError(f"undecodable Request ({len(payload)} bytes): {exc}") from exc
        kind = request.WhichOneof("value")
        flush = False
        if kind == "flush":
            response = pb.Response(flush=pb.ResponseFlush())
            flush = True
        elif kind == "echo":
            response = pb.Response(echo=pb.ResponseEcho(message=request.echo.message))
        elif kind is None or kind not in self._handlers:
            logger.error("ABCI request of unknown type %r", kind)
            response = _error_response(f"unknown request type {kind!r}")
        else:
            response = self._call_app(kind, request)
        body = response.SerializeToString()
        out += encode_uvarint(len(body))
        out += body
        return flush

    def _call_app(self, kind: str, request: pb.Request) -> pb.Response:
        method, response_type = self._handlers[kind]
        try:
            result = method(getattr(request, kind))
            if not isinstance(result, response_type):
                raise TypeError(
                    f"{kind}() returned {type(result).__name__}, expected {response_type.__name__}"
                )
            response = pb.Response()
            getattr(response, kind).CopyFrom(result)
            return response
        except Exception as exc:  # an application bug must not take the connection down
            logger.exception("ABCI application failed in %s", kind)
            return _error_response(f"{kind}: {type(exc).__name__}: {exc}")


async def serve(
    app: BaseApplication, address: str, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> None:
    """Serve ``app`` on ``address`` until the calling task is cancelled."""
    await ABCIServer(app, address, max_message_size=max_message_size).serve_forever()
