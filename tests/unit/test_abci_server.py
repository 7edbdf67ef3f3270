"""Unit tests for the ABCI socket server: framing, ordering, error handling, default application."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.abci_app.application import BaseApplication, tx_proto_size, uvarint_size
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.server import (
    DEFAULT_MAX_MESSAGE_SIZE,
    ABCIAddressError,
    ABCIServer,
    FrameDecoder,
    FrameError,
    ListenAddress,
    decode_uvarint,
    encode_uvarint,
    frame_message,
    parse_address,
)

T = TypeVar("T")

VARINT_SAMPLES = [0, 1, 127, 128, 255, 300, 16383, 16384, 2**21, 2**28 - 1, 2**31 - 1, 2**31, 2**32 - 1,
                  2**32, 2**35 + 5, 2**56, 2**63 - 1, 2**63, 2**64 - 1]


# --------------------------------------------------------------------------------------------
# varint framing


def test_uvarint_known_vectors() -> None:
    assert encode_uvarint(0) == b"\x00"
    assert encode_uvarint(1) == b"\x01"
    assert encode_uvarint(127) == b"\x7f"
    assert encode_uvarint(128) == b"\x80\x01"
    assert encode_uvarint(300) == b"\xac\x02"
    # Unsigned, not zigzag: 2**31 must not turn into a negative-number encoding.
    assert encode_uvarint(2**31) == b"\x80\x80\x80\x80\x08"
    assert encode_uvarint(2**64 - 1) == b"\xff" * 9 + b"\x01"


@pytest.mark.parametrize("value", VARINT_SAMPLES)
def test_uvarint_round_trip_and_matches_protobuf(value: int) -> None:
    encoded = encode_uvarint(value)
    # Cross-check against protobuf's own encoder: RequestInfo.block_version is uint64 field 2.
    # (proto3 omits a zero scalar entirely, so the check only applies to non-zero values).
    if value:
        assert pb.RequestInfo(block_version=value).SerializeToString() == b"\x10" + encoded
    assert len(encoded) == uvarint_size(value)
    assert decode_uvarint(encoded) == (value, len(encoded))
    # Decoding at an offset, with trailing bytes after the varint.
    assert decode_uvarint(b"zz" + encoded + b"\x05", 2) == (value, 2 + len(encoded))
    # Every strict prefix is "incomplete", never a wrong value.
    for cut in range(len(encoded)):
        assert decode_uvarint(encoded[:cut]) is None


def test_uvarint_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        encode_uvarint(-1)
    with pytest.raises(ValueError):
        encode_uvarint(2**64)
    with pytest.raises(FrameError):
        decode_uvarint(b"\xff" * 9 + b"\x02")  # 2**64: overflows
    with pytest.raises(FrameError):
        decode_uvarint(b"\xff" * 11)  # eleven bytes


def test_decoder_header_for_huge_lengths_waits_for_body() -> None:
    # Lengths >= 2**31 are parsed exactly; with a large enough limit the decoder just waits.
    for value in (2**31, 2**32 + 7, 2**40):
        dec = FrameDecoder(max_size=2**62)
        dec.feed(encode_uvarint(value) + b"abc")
        assert dec.next_frame() is None
        assert dec.buffered == len(encode_uvarint(value)) + 3


@settings(max_examples=60, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=5000), max_size=20),
)
def test_decoder_reassembles_frames_split_anywhere(payloads: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(encode_uvarint(len(p)) + p for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    dec = FrameDecoder()
    got: list[bytes] = []
    for start, end in zip(points, points[1:], strict=False):
        dec.feed(stream[start:end])
        while (frame := dec.next_frame()) is not None:
            got.append(frame)
    assert got == payloads
    assert dec.buffered == 0


def test_decoder_byte_by_byte_with_large_frame() -> None:
    big = bytes(range(256)) * 700  # 179200 bytes: a three-byte header
    stream = frame_message(pb.RequestEcho(message="hi")) + encode_uvarint(len(big)) + big
    dec = FrameDecoder()
    got: list[bytes] = []
    for i in range(len(stream)):
        dec.feed(stream[i : i + 1])
        while (frame := dec.next_frame()) is not None:
            got.append(frame)
    assert got == [pb.RequestEcho(message="hi").SerializeToString(), big]


def test_decoder_rejects_oversize_before_body_arrives() -> None:
    dec = FrameDecoder(max_size=100)
    dec.feed(encode_uvarint(100) + b"x" * 100 + encode_uvarint(101))
    assert dec.next_frame() == b"x" * 100
    with pytest.raises(FrameError, match="101 bytes"):
        dec.next_frame()


# --------------------------------------------------------------------------------------------
# addresses


def test_parse_address() -> None:
    assert parse_address("tcp://127.0.0.1:26658") == ListenAddress("tcp", host="127.0.0.1", port=26658)
    assert parse_address("tcp://[::1]:0") == ListenAddress("tcp", host="::1", port=0)
    assert str(parse_address("tcp://[::1]:5")) == "tcp://[::1]:5"
    assert parse_address("unix:///tmp/x.sock") == ListenAddress("unix", path="/tmp/x.sock")
    for bad in ("127.0.0.1:26658", "http://h:1", "tcp://h", "tcp://:1", "tcp://h:99999", "tcp://h:x",
                "unix://"):
        with pytest.raises(ABCIAddressError):
            parse_address(bad)


# --------------------------------------------------------------------------------------------
# server


class CountingApp(BaseApplication):
    """Accepts txs starting with b'ok', rejects others with code 7; 'boom' raises."""

    def __init__(self) -> None:
        self.check_calls = 0

    def info(self, req: pb.RequestInfo) -> pb.ResponseInfo:
        return pb.ResponseInfo(data="counting", version=req.version, last_block_height=41,
                               last_block_app_hash=b"\x01\x02")

    def check_tx(self, req: pb.RequestCheckTx) -> pb.ResponseCheckTx:
        self.check_calls += 1
        if req.tx == b"boom":
            raise RuntimeError("kaboom in check_tx")
        if req.tx.startswith(b"ok"):
            return pb.ResponseCheckTx(code=0, gas_wanted=len(req.tx))
        return pb.ResponseCheckTx(code=7, log=f"rejected {req.tx!r}")

    def query(self, req: pb.RequestQuery) -> pb.ResponseQuery:
        return cast(pb.ResponseQuery, pb.ResponseInfo())  # deliberately the wrong type


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def open_client(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.startswith("unix://"):
        return await asyncio.open_unix_connection(address[len("unix://"):])
    host, _, port = address[len("tcp://"):].rpartition(":")
    return await asyncio.open_connection(host, int(port))


async def read_responses(reader: asyncio.StreamReader, count: int) -> list[pb.Response]:
    dec = FrameDecoder()
    out: list[pb.Response] = []
    while len(out) < count:
        data = await reader.read(65536)
        assert data, f"connection closed after {len(out)} of {count} responses"
        dec.feed(data)
        while (frame := dec.next_frame()) is not None:
            out.append(pb.Response.FromString(frame))
    return out


async def connection_closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(65536), 5) == b""
    except ConnectionResetError:
        return True


def with_server(app: BaseApplication, body: Callable[[ABCIServer], Awaitable[T]],
                address: str = "tcp://127.0.0.1:0", **kwargs: Any) -> T:
    async def main() -> T:
        server = ABCIServer(app, address, **kwargs)
        await server.start()
        try:
            return await body(server)
        finally:
            await server.stop()

    return run(main())


def req(**kwargs: Any) -> bytes:
    return bytes(frame_message(pb.Request(**kwargs)))


def test_echo_flush_info_check_tx_in_order() -> None:
    app = CountingApp()

    async def body(server: ABCIServer) -> list[pb.Response]:
        assert server.bound_address.startswith("tcp://127.0.0.1:")
        assert not server.bound_address.endswith(":0")
        reader, writer = await open_client(server.bound_address)
        writer.write(req(echo=pb.RequestEcho(message="héllo"))
                     + req(flush=pb.RequestFlush())
                     + req(info=pb.RequestInfo(version="0.38.26", block_version=11))
                     + req(check_tx=pb.RequestCheckTx(tx=b"ok-1"))
                     + req(check_tx=pb.RequestCheckTx(tx=b"bad", type=pb.CheckTxType.RECHECK))
                     + req(flush=pb.RequestFlush()))
        responses = await read_responses(reader, 6)
        writer.close()
        return responses

    r = with_server(app, body)
    assert [x.WhichOneof("value") for x in r] == ["echo", "flush", "info", "check_tx", "check_tx", "flush"]
    assert r[0].echo.message == "héllo"
    assert r[2].info.data == "counting" and r[2].info.version == "0.38.26"
    assert r[2].info.last_block_height == 41 and r[2].info.last_block_app_hash == b"\x01\x02"
    assert r[3].check_tx.code == 0 and r[3].check_tx.gas_wanted == 4
    assert r[4].check_tx.code == 7 and r[4].check_tx.log == "rejected b'bad'"
    assert app.check_calls == 2


def test_responses_are_held_until_flush() -> None:
    async def body(server: ABCIServer) -> None:
        reader, writer = await open_client(server.bound_address)
        writer.write(req(echo=pb.RequestEcho(message="a")))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.read(1), 0.3)
        writer.write(req(flush=pb.RequestFlush()))
        got = await read_responses(reader, 2)
        assert [g.WhichOneof("value") for g in got] == ["echo", "flush"]
        writer.close()

    with_server(CountingApp(), body)


def test_frames_split_across_packets() -> None:
    async def body(server: ABCIServer) -> list[pb.Response]:
        reader, writer = await open_client(server.bound_address)
        stream = req(check_tx=pb.RequestCheckTx(tx=b"ok" + b"z" * 5000)) + req(flush=pb.RequestFlush())
        for i in range(0, len(stream), 7):  # header and body arrive in many small pieces
            writer.write(stream[i : i + 7])
            await writer.drain()
            await asyncio.sleep(0)
        got = await read_responses(reader, 2)
        writer.close()
        return got

    got = with_server(CountingApp(), body)
    assert got[0].check_tx.gas_wanted == 5002 and got[1].HasField("flush")


@pytest.mark.parametrize("bad", [
    encode_uvarint(DEFAULT_MAX_MESSAGE_SIZE + 1),        # oversize announcement
    encode_uvarint(2) + b"\x0f\x00",                      # invalid wire type 7
    encode_uvarint(3) + b"\x42\x05\x0a",                  # nested message truncated
    b"\xff" * 11,                                         # length prefix too long
])
def test_bad_frame_closes_only_that_connection(bad: bytes, caplog: pytest.LogCaptureFixture) -> None:
    async def body(server: ABCIServer) -> list[pb.Response]:
        r1, w1 = await open_client(server.bound_address)
        r2, w2 = await open_client(server.bound_address)
        w1.write(bad)
        assert await connection_closed(r1)
        # The server survived: an existing and a new connection both still work.
        r3, w3 = await open_client(server.bound_address)
        out = []
        for w, r in ((w2, r2), (w3, r3)):
            w.write(req(echo=pb.RequestEcho(message="still here")) + req(flush=pb.RequestFlush()))
            out += await read_responses(r, 2)
            w.close()
        w1.close()
        return out

    with caplog.at_level(logging.INFO, logger="fedledger.abci_app.server"):
        out = with_server(CountingApp(), body)
    assert [o.echo.message for o in out if o.HasField("echo")] == ["still here", "still here"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and "closing it" in errors[0].getMessage()
    assert any("opened from" in r.getMessage() for r in caplog.records)


def test_small_max_message_size_is_enforced() -> None:
    async def body(server: ABCIServer) -> bool:
        reader, writer = await open_client(server.bound_address)
        writer.write(req(check_tx=pb.RequestCheckTx(tx=b"ok" + b"x" * 200)))
        closed = await connection_closed(reader)
        writer.close()
        return closed

    assert with_server(CountingApp(), body, max_message_size=128)


def test_handler_exception_and_wrong_type_yield_response_exception(caplog: pytest.LogCaptureFixture) -> None:
    async def body(server: ABCIServer) -> list[pb.Response]:
        reader, writer = await open_client(server.bound_address)
        writer.write(req(check_tx=pb.RequestCheckTx(tx=b"boom"))
                     + req(query=pb.RequestQuery(path="/x"))
                     + frame_message(pb.Request())  # no oneof set
                     + req(check_tx=pb.RequestCheckTx(tx=b"ok"))
                     + req(flush=pb.RequestFlush()))
        got = await read_responses(reader, 5)
        writer.close()
        return got

    with caplog.at_level(logging.ERROR, logger="fedledger.abci_app.server"):
        got = with_server(CountingApp(), body)
    kinds = [g.WhichOneof("value") for g in got]
    assert kinds == ["exception", "exception", "exception", "check_tx", "flush"]
    assert "kaboom in check_tx" in got[0].exception.error and "RuntimeError" in got[0].exception.error
    assert "ResponseInfo" in got[1].exception.error and "ResponseQuery" in got[1].exception.error
    assert "unknown request" in got[2].exception.error
    assert got[3].check_tx.code == 0
    assert any("kaboom" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_all_app_calls_are_routed() -> None:
    """Every ABCI 2.0 call reaches BaseApplication and comes back in the matching Response member."""
    calls = {
        "info": pb.RequestInfo(), "init_chain": pb.RequestInitChain(chain_id="c"),
        "query": pb.RequestQuery(), "check_tx": pb.RequestCheckTx(tx=b"t"), "commit": pb.RequestCommit(),
        "list_snapshots": pb.RequestListSnapshots(), "offer_snapshot": pb.RequestOfferSnapshot(),
        "load_snapshot_chunk": pb.RequestLoadSnapshotChunk(),
        "apply_snapshot_chunk": pb.RequestApplySnapshotChunk(),
        "prepare_proposal": pb.RequestPrepareProposal(max_tx_bytes=100, txs=[b"a", b"b"]),
        "process_proposal": pb.RequestProcessProposal(), "extend_vote": pb.RequestExtendVote(),
        "verify_vote_extension": pb.RequestVerifyVoteExtension(),
        "finalize_block": pb.RequestFinalizeBlock(txs=[b"a", b"b", b"c"]),
    }

    async def body(server: ABCIServer) -> list[pb.Response]:
        reader, writer = await open_client(server.bound_address)
        writer.write(b"".join(req(**{k: v}) for k, v in calls.items()) + req(flush=pb.RequestFlush()))
        got = await read_responses(reader, len(calls) + 1)
        writer.close()
        return got

    got = with_server(BaseApplication(), body)
    assert [g.WhichOneof("value") for g in got] == [*calls, "flush"]
    by_kind = {g.WhichOneof("value"): g for g in got}
    assert list(by_kind["prepare_proposal"].prepare_proposal.txs) == [b"a", b"b"]
    assert [r.code for r in by_kind["finalize_block"].finalize_block.tx_results] == [0, 0, 0]
    assert by_kind["process_proposal"].process_proposal.status == pb.ResponseProcessProposal.ACCEPT
    assert by_kind["offer_snapshot"].offer_snapshot.result == pb.ResponseOfferSnapshot.ABORT


def test_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "abci.sock"

    async def body(server: ABCIServer) -> str:
        assert server.bound_address == f"unix://{path}"
        reader, writer = await open_client(server.bound_address)
        writer.write(req(echo=pb.RequestEcho(message="unix")) + req(flush=pb.RequestFlush()))
        got = await read_responses(reader, 2)
        writer.close()
        return str(got[0].echo.message)

    assert with_server(CountingApp(), body, address=f"unix://{path}") == "unix"
    assert not path.exists()


def test_stop_closes_open_connections_and_start_twice_fails() -> None:
    async def main() -> bool:
        server = ABCIServer(CountingApp(), "tcp://127.0.0.1:0")
        with pytest.raises(RuntimeError):
            _ = server.bound_address
        await server.start()
        with pytest.raises(RuntimeError):
            await server.start()
        reader, writer = await open_client(server.bound_address)
        writer.write(req(echo=pb.RequestEcho(message="x")))  # not flushed: connection stays busy
        await asyncio.sleep(0.05)
        await server.stop()
        closed = await connection_closed(reader)
        writer.close()
        return closed

    assert run(main())


def test_app_without_required_method_is_refused() -> None:
    class Incomplete:
        def info(self, req: pb.RequestInfo) -> pb.ResponseInfo:
            return pb.ResponseInfo()

    with pytest.raises(TypeError, match="init_chain"):
        ABCIServer(cast(BaseApplication, Incomplete()), "tcp://127.0.0.1:0")


# --------------------------------------------------------------------------------------------
# BaseApplication defaults


def test_prepare_proposal_cuts_at_max_tx_bytes_with_proto_overhead() -> None:
    app = BaseApplication()
    txs = [b"a" * 10, b"b" * 200, b"c" * 5, b"d"]
    # Sizes inside Data.txs: 1 tag + 1 length + 10 = 12; 1 + 2 + 200 = 203; 7; 3.
    assert [tx_proto_size(t) for t in txs] == [12, 203, 7, 3]
    cut = app.prepare_proposal(pb.RequestPrepareProposal(max_tx_bytes=12 + 203, txs=txs))
    assert list(cut.txs) == txs[:2]
    cut = app.prepare_proposal(pb.RequestPrepareProposal(max_tx_bytes=12 + 203 - 1, txs=txs))
    assert list(cut.txs) == txs[:1]  # stops at the first misfit; does not skip ahead to c and d
    everything = app.prepare_proposal(pb.RequestPrepareProposal(max_tx_bytes=10**6, txs=txs))
    assert list(everything.txs) == txs


def test_base_application_defaults() -> None:
    app = BaseApplication()
    assert app.check_tx(pb.RequestCheckTx(tx=b"x")).code == 0
    assert app.query(pb.RequestQuery()).code == 0
    assert app.info(pb.RequestInfo()).last_block_height == 0
    assert app.extend_vote(pb.RequestExtendVote()).vote_extension == b""
    vv = app.verify_vote_extension(pb.RequestVerifyVoteExtension())
    assert vv.status == pb.ResponseVerifyVoteExtension.ACCEPT
    assert list(app.list_snapshots(pb.RequestListSnapshots()).snapshots) == []
    assert app.load_snapshot_chunk(pb.RequestLoadSnapshotChunk()).chunk == b""
    result = app.apply_snapshot_chunk(pb.RequestApplySnapshotChunk()).result
    assert result == pb.ResponseApplySnapshotChunk.ABORT
    fb = app.finalize_block(pb.RequestFinalizeBlock(txs=[b"1", b"2"]))
    assert len(fb.tx_results) == 2 and all(r.code == 0 for r in fb.tx_results)
    assert app.commit(pb.RequestCommit()).retain_height == 0
    with pytest.raises(ValueError):
        uvarint_size(-1)


def test_missing_generated_module_gives_make_proto_hint() -> None:
    code = (
        "import sys\n"
        "sys.modules['fedledger.abci_app.proto.abci_pb2'] = None\n"
        "try:\n"
        "    import fedledger.abci_app.proto.types\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": ""}, check=True).stdout
    assert out.startswith("ProtoNotBuiltError")
    assert "run `make proto`" in out
