"""The delaying TCP relay `bench faults` uses without netem: order kept, delay added, sources distinct."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from fedledger.localnet.delayproxy import DelayRelay, delivery_times, main, parse_hostport
from fedledger.localnet.ports import find_free_base_port


def test_delivery_keeps_the_order_of_chunks() -> None:
    assert delivery_times([0.0, 0.01, 0.02], [0.05, 0.01, 0.06]) == [0.05, 0.05, 0.08]
    assert delivery_times([], []) == []


def test_hostport_and_parameters() -> None:
    assert parse_hostport("10.0.0.2:26609") == ("10.0.0.2", 26609)
    for bad in ("10.0.0.2", ":1", "h:0", "h:x"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_hostport(bad)
    with pytest.raises(ValueError, match="jitter"):
        DelayRelay(("127.0.0.1", 1), ("127.0.0.1", 2), 0.01, 0.02)
    assert main(["--listen", "nope", "--to", "127.0.0.1:1", "--delay-ms", "1"]) == 2


def test_each_client_gets_its_own_loopback_source() -> None:
    relay = DelayRelay(("0.0.0.0", 1), ("127.0.0.1", 2), 0.0, 0.0)
    assert relay.source_for(("10.1.2.7", 5555)) == ("127.0.0.7", 0)
    assert relay.source_for(("::1", 5555, 0, 0)) is None
    assert DelayRelay(("0.0.0.0", 1), ("10.0.0.3", 2), 0.0, 0.0).source_for(("10.1.2.7", 1)) is None


def test_a_round_trip_through_the_relay_takes_twice_the_delay() -> None:
    base = find_free_base_port(2)
    delay = 0.08

    async def scenario() -> tuple[bytes, float, float]:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", base)
        stop = asyncio.Event()
        relay = DelayRelay(("127.0.0.1", base + 1), ("127.0.0.1", base), delay, 0.0, random.Random(1))
        task = asyncio.create_task(relay.serve(stop))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        direct_r, direct_w = await asyncio.open_connection("127.0.0.1", base)
        direct_w.write(b"ping")
        await direct_r.readexactly(4)
        direct = time.monotonic() - t0
        reader, writer = await asyncio.open_connection("127.0.0.1", base + 1)
        t1 = time.monotonic()
        writer.write(b"hello ")
        writer.write(b"world")
        got = await reader.readexactly(11)
        relayed = time.monotonic() - t1
        for w in (writer, direct_w):
            w.close()
        stop.set()
        await task
        server.close()
        return got, direct, relayed

    got, direct, relayed = asyncio.run(scenario())
    assert got == b"hello world"
    assert relayed >= 2 * delay and relayed > direct + delay
