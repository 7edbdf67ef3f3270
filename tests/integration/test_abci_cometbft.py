"""Runs the real CometBFT v0.38 against FedLedger's ABCI server with a tiny counting application."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedledger.abci_app.application import BaseApplication
from fedledger.abci_app.proto import types as pb
from fedledger.abci_app.server import ABCIServer
from fedledger.localnet.cometbft import default_bin_dir

pytestmark = pytest.mark.integration

COMETBFT = Path(os.environ.get("COMETBFT_BIN") or default_bin_dir() / "cometbft")
REJECT_CODE = 3


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def count_hash(count: int) -> bytes:
    return count.to_bytes(8, "big")


class CountingApp(BaseApplication):
    """App hash = 8-byte big-endian number of executed txs; txs starting with b'bad' fail CheckTx."""

    def __init__(self) -> None:
        self.count = 0
        self.height = 0
        self.pending: tuple[int, int] | None = None
        self.chain_id = ""
        self.genesis_powers: list[int] = []
        self.vote_powers: set[int] = set()
        self.extensions_seen: list[bytes] = []
        self.extend_calls = 0

    def info(self, req: pb.RequestInfo) -> pb.ResponseInfo:
        return pb.ResponseInfo(data="counting-app", last_block_height=self.height,
                               last_block_app_hash=count_hash(self.count) if self.height else b"")

    def init_chain(self, req: pb.RequestInitChain) -> pb.ResponseInitChain:
        self.chain_id = req.chain_id
        self.genesis_powers = [v.power for v in req.validators if len(v.pub_key.ed25519) == 32]
        return pb.ResponseInitChain(app_hash=count_hash(0))

    def check_tx(self, req: pb.RequestCheckTx) -> pb.ResponseCheckTx:
        if req.tx.startswith(b"bad"):
            return pb.ResponseCheckTx(code=REJECT_CODE, log=f"tx {req.tx.decode()} is bad", codespace="count")
        return pb.ResponseCheckTx(code=0)

    def prepare_proposal(self, req: pb.RequestPrepareProposal) -> pb.ResponsePrepareProposal:
        self.extensions_seen.extend(v.vote_extension for v in req.local_last_commit.votes if v.vote_extension)
        return super().prepare_proposal(req)

    def extend_vote(self, req: pb.RequestExtendVote) -> pb.ResponseExtendVote:
        self.extend_calls += 1
        return pb.ResponseExtendVote(vote_extension=b"ext-%d" % req.height)

    def finalize_block(self, req: pb.RequestFinalizeBlock) -> pb.ResponseFinalizeBlock:
        self.vote_powers.update(v.validator.power for v in req.decided_last_commit.votes)
        count = self.count
        results = []
        for _tx in req.txs:
            count += 1
            results.append(pb.ExecTxResult(code=0, data=count_hash(count)))
        self.pending = (req.height, count)
        return pb.ResponseFinalizeBlock(tx_results=results, app_hash=count_hash(count))

    def commit(self, req: pb.RequestCommit) -> pb.ResponseCommit:
        assert self.pending is not None, "commit without finalize_block"
        self.height, self.count = self.pending
        self.pending = None
        return pb.ResponseCommit()

    def query(self, req: pb.RequestQuery) -> pb.ResponseQuery:
        if req.path != "/count":
            return pb.ResponseQuery(code=1, log=f"unknown path {req.path}")
        return pb.ResponseQuery(code=0, value=count_hash(self.count), height=self.height)


class ServerThread:
    """Runs an ABCIServer on its own event loop in a background thread."""

    def __init__(self, app: BaseApplication, address: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = ABCIServer(app, address)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ABCIServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[tuple[CountingApp, httpx.Client, Path]]:
    if not COMETBFT.is_file():
        pytest.skip(f"cometbft binary not found at {COMETBFT}")
    home = tmp_path / "cmt"
    subprocess.run([str(COMETBFT), "init", "--home", str(home)], check=True, capture_output=True, timeout=60)
    config = home / "config" / "config.toml"
    text = config.read_text()
    text = re.sub(r'(?m)^timeout_commit = .*$', 'timeout_commit = "150ms"', text)
    text = re.sub(r'(?m)^timeout_propose = .*$', 'timeout_propose = "1s"', text)
    config.write_text(text)
    # Vote extensions from height 1 so ExtendVote and ExtendedCommitInfo travel over the wire too.
    genesis_path = home / "config" / "genesis.json"
    genesis = json.loads(genesis_path.read_text())
    genesis["consensus_params"]["abci"]["vote_extensions_enable_height"] = "1"
    genesis_path.write_text(json.dumps(genesis))

    app = CountingApp()
    rpc_port, p2p_port = free_port(), free_port()
    log_path = tmp_path / "cometbft.log"
    with ServerThread(app, "tcp://127.0.0.1:0") as server, open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(COMETBFT), "node", "--home", str(home), "--proxy_app", server.bound_address,
             "--rpc.laddr", f"tcp://127.0.0.1:{rpc_port}", "--p2p.laddr", f"tcp://127.0.0.1:{p2p_port}"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{rpc_port}", timeout=30)
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, "cometbft exited:\n" + log_path.read_text()[-4000:]
                assert time.monotonic() < deadline, "no block within 60 s:\n" + log_path.read_text()[-4000:]
                try:
                    if int(status(client)["latest_block_height"]) >= 2:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            yield app, client, log_path
        finally:
            client.close()
            stop_process(proc)


def rpc(client: httpx.Client, method: str, **params: str) -> Any:
    reply = client.get(f"/{method}", params=params).json()
    assert "error" not in reply, reply
    return reply["result"]


def status(client: httpx.Client) -> Any:
    return rpc(client, "status")["sync_info"]


def wait_height(client: httpx.Client, height: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while (latest := int(status(client)["latest_block_height"])) < height:
        assert time.monotonic() < deadline, f"height {height} not reached (at {latest})"
        time.sleep(0.1)
    return latest


def test_cometbft_runs_counting_app(chain: tuple[CountingApp, httpx.Client, Path]) -> None:
    app, client, log_path = chain
    h0 = int(status(client)["latest_block_height"])

    heights = []
    for i in range(1, 6):
        tx = f"tx-{i}".encode()
        res = rpc(client, "broadcast_tx_commit", tx="0x" + tx.hex())
        assert res["check_tx"]["code"] == 0, res
        assert res["tx_result"]["code"] == 0, res
        # ExecTxResult.data carries the running count: the txs ran in order, exactly once.
        assert base64.b64decode(res["tx_result"]["data"]) == count_hash(i)
        heights.append(int(res["height"]))
    assert heights == sorted(heights) and heights[0] > h0

    rejected = rpc(client, "broadcast_tx_commit", tx="0x" + b"bad-1".hex())
    assert rejected["check_tx"]["code"] == REJECT_CODE
    assert rejected["check_tx"]["log"] == "tx bad-1 is bad"
    assert rejected["check_tx"]["codespace"] == "count"

    # The header of the block after the last tx carries the app hash of 5 executed txs; so does
    # every later block, as nothing else is sent.
    latest = wait_height(client, heights[-1] + 2)
    header = rpc(client, "block", height=str(heights[-1] + 1))["block"]["header"]
    assert bytes.fromhex(header["app_hash"]) == count_hash(5)
    assert bytes.fromhex(status(client)["latest_app_hash"]) == count_hash(5)
    assert latest > heights[-1]

    answer = rpc(client, "abci_query", path='"/count"')["response"]
    assert answer["code"] == 0 and base64.b64decode(answer["value"]) == count_hash(5)
    info = rpc(client, "abci_info")["response"]
    assert info["data"] == "counting-app" and int(info["last_block_height"]) >= heights[-1]

    # Decoded consensus data is faithful: chain id, genesis validator power, vote extensions.
    assert app.chain_id == rpc(client, "status")["node_info"]["network"]
    assert app.genesis_powers == [10] and app.vote_powers == {10}
    assert app.extend_calls > 0 and any(e.startswith(b"ext-") for e in app.extensions_seen)
    assert "CONSENSUS FAILURE" not in log_path.read_text()
