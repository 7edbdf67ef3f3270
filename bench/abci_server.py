"""CheckTx round trips per second against FedLedger's ABCI socket server, as CometBFT's mempool sees it.

The server runs in its own process (BaseApplication, which accepts every tx) so that the client's
event loop does not share its interpreter. Two phases: one CheckTx then Flush at a time for
`seconds`, and `batches` pipelined batches of `batch_size` CheckTx requests followed by one Flush.
Every response is checked (CheckTx answers in request order, code 0, then the Flush), so a server
that drops, reorders or mislabels a response fails the benchmark instead of being timed.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from typing import Any

from fedledger.abci_app.errors import ConfigError
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.server import FrameDecoder, frame_message

__all__ = ["bench_abci"]

_SERVER = ("import asyncio\n"
           "from fedledger.abci_app.application import BaseApplication\n"
           "from fedledger.abci_app.server import serve\n"
           "asyncio.run(serve(BaseApplication(), 'tcp://127.0.0.1:{port}'))\n")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Connection:
    """One ABCI client connection: write frames, read back exactly n responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.decoder = reader, writer, FrameDecoder()

    async def responses(self, n: int) -> list[pb.Response]:
        out: list[pb.Response] = []
        while len(out) < n:
            data = await self.reader.read(1 << 20)
            if not data:
                raise ConfigError(f"the ABCI server closed the connection after {len(out)} of {n} responses")
            self.decoder.feed(data)
            while (frame := self.decoder.next_frame()) is not None:
                out.append(pb.Response.FromString(frame))
        return out


def _check(got: list[pb.Response], n_checks: int) -> None:
    """n_checks accepted CheckTx answers, then the Flush: anything else is a server defect."""
    for i, response in enumerate(got[:n_checks]):
        if not response.HasField("check_tx") or response.check_tx.code != 0:
            raise ConfigError(f"response {i} is not an accepted CheckTx: {response}")
    if len(got) != n_checks + 1 or not got[-1].HasField("flush"):
        raise ConfigError(f"expected {n_checks} CheckTx answers then a Flush, got {len(got)} responses")


async def _measure(port: int, seconds: float, batches: int, batch_size: int) -> dict[str, Any]:
    for _ in range(200):
        try:
            conn = _Connection(*await asyncio.open_connection("127.0.0.1", port))
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise ConfigError("the ABCI server did not start listening within 20 s")
    flush = frame_message(pb.Request(flush=pb.RequestFlush()))
    checks = [frame_message(pb.Request(check_tx=pb.RequestCheckTx(tx=b"tx-%d" % i))) for i in range(batch_size)]
    sequential = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.writer.write(checks[sequential % batch_size] + flush)
        _check(await conn.responses(2), 1)
        sequential += 1
    seq_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        conn.writer.write(b"".join(checks) + flush)
        _check(await conn.responses(batch_size + 1), batch_size)
    pipe_s = time.perf_counter() - start
    conn.writer.close()
    return {"sequential": {"round_trips": sequential, "duration_s": round(seq_s, 3),
                           "per_s": round(sequential / seq_s, 1)},
            "pipelined": {"check_txs": batches * batch_size, "batch_size": batch_size, "duration_s": round(pipe_s, 3),
                          "per_s": round(batches * batch_size / pipe_s, 1)}}


def bench_abci(seconds: float = 1.0, batches: int = 5, batch_size: int = 1000) -> dict[str, Any]:
    """Sequential and pipelined CheckTx rates against a server process on a free local port."""
    if seconds <= 0 or batches < 1 or batch_size < 1:
        raise ConfigError("seconds must be > 0, batches and batch_size >= 1")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", _SERVER.format(port=port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(_measure(port, seconds, batches, batch_size))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
