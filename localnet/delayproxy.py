"""A TCP relay that delays every chunk by a fixed delay ± jitter: a WAN for kernels without `tc netem`.

Run as ``python -m fedledger.localnet.delayproxy --listen HOST:PORT --to HOST:PORT --delay-ms 50
--jitter-ms 10``. Each direction of each connection is delayed separately, in order (a chunk is never
delivered before the one read ahead of it), so a connection through one relay sees a round trip of
about twice the delay, as with netem on both hosts' links. `bench faults` puts one in front of
every host's p2p port when netem is missing, and says so in its figures. Tests and benchmarks only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
from collections.abc import Sequence

__all__ = ["DelayRelay", "delivery_times", "main", "next_due", "parse_hostport"]

_CHUNK = 65536


def parse_hostport(text: str) -> tuple[str, int]:
    """``host:port`` -> ``(host, port)``; ValueError with the reason."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def next_due(last_due: float, arrived: float, delay: float) -> float:
    """When a chunk leaves: its arrival plus its delay, but never before the chunk ahead of it (FIFO)."""
    return max(last_due, arrived + delay)


def delivery_times(arrivals: Sequence[float], delays: Sequence[float]) -> list[float]:
    """next_due applied to a whole stream of chunks."""
    out: list[float] = []
    last = float("-inf")
    for arrived, delay in zip(arrivals, delays, strict=True):
        last = next_due(last, arrived, delay)
        out.append(last)
    return out


class DelayRelay:
    """Accept on ``listen``, connect each client to ``target``, delay both directions."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], delay_s: float, jitter_s: float,
                 rng: random.Random | None = None) -> None:
        if delay_s < 0 or jitter_s < 0 or jitter_s > delay_s:
            raise ValueError("need 0 <= jitter <= delay")
        self.listen = listen
        self.target = target
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.rng = rng or random.Random()  # noqa: S311 - network emulation, not security

    def _delay(self) -> float:
        return self.delay_s + self.rng.uniform(-self.jitter_s, self.jitter_s)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(send())
        last = 0.0
        try:
            while True:
                data = await reader.read(_CHUNK)
                last = next_due(last, loop.time(), self._delay())
                queue.put_nowait((last, data))
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            sender.cancel()
        finally:
            writer.close()

    def source_for(self, client: object) -> tuple[str, int] | None:
        """The loopback source address for a client's upstream connection: 127.0.0.<client's last octet>.

        CometBFT refuses a second peer from an IP it already has a peer on; through a relay every
        peer would come from 127.0.0.1, so each client gets its own loopback address instead.
        """
        if not self.target[0].startswith("127.") or not isinstance(client, tuple) or not client:
            return None
        parts = str(client[0]).split(".")
        if len(parts) != 4 or not all(p.isdigit() for p in parts) or parts[3] in ("0", "255"):
            return None
        return f"127.0.0.{parts[3]}", 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(
                *self.target, local_addr=self.source_for(writer.get_extra_info("peername")))
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)

    async def serve(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set."""
        server = await asyncio.start_server(self._handle, *self.listen)
        async with server:
            await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fedledger.localnet.delayproxy``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    try:
        relay = DelayRelay(parse_hostport(args.listen), parse_hostport(args.to), args.delay_ms / 1000,
                           args.jitter_ms / 1000)
    except ValueError as exc:
        print(f"delayproxy: {exc}", file=sys.stderr)
        return 2

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await relay.serve(stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
