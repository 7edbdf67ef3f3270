"""Light-client verification of query answers against a real 4-validator CometBFT v0.38 localnet.

The client talks to node 0 through a small JSON-RPC proxy that can rewrite answers in transit,
standing in for a lying node. With FEDLEDGER_WRITE_LIGHTCLIENT_FIXTURE=1 the run also (re)writes
tests/unit/fixtures/lightclient_localnet.json, which the unit tests use offline.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedledger.abci_app.store import Proof
from fedledger.abci_app.store.merkle import bucket_hash, bucket_index, inner_hash
from fedledger.abci_app.store.proof import RecordProof
from fedledger.localnet import manager
from fedledger.localnet.dev import localnet_trust_root
from fedledger.localnet.ports import find_free_base_port
from fedledger.sdk.lightclient import (
    Header,
    SignedHeader,
    TrustRoot,
    Validator,
    header_hash,
    verify_signed_header,
)
from fedledger.sdk.provenance import ProofFailedError, check_query_proof
from fedledger.sdk.rpc import AbciQueryResult, CometRPC
from tests.integration.conftest import down_if_running
from tests.support import use_pinned_cometbft

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "lightclient_localnet.json"
STATE_KEY = b"meta/chain_id"
Rewrite = Callable[[str, dict[str, Any], dict[str, Any]], None]




class _Proxy(ThreadingHTTPServer):
    """A JSON-RPC proxy on 127.0.0.1 in front of one node; `rewrite` may alter each result in place."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.rewrite: Rewrite | None = None
        self.http = httpx.Client(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _Proxy

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        payload = self.server.http.post(self.server.upstream, json=request).json()
        rewrite = self.server.rewrite
        if rewrite is not None and "result" in payload:
            rewrite(request["method"], request.get("params") or {}, payload["result"])
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@dataclass
class Net:
    home: Path
    rpc: CometRPC
    proxy: _Proxy
    client: CometRPC  # talks to the proxy: the node as the client sees it
    trust: TrustRoot

    def query(self) -> AbciQueryResult:
        # A raw store key every FedLedger chain commits (at InitChain, with block 1), so the test does
        # not depend on which txs the federation and identity modules currently accept.
        return self.client.abci_query("/key", STATE_KEY, prove=True)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    restore_env = use_pinned_cometbft()
    home = tmp_path_factory.mktemp("lightclient") / "net"
    proxy: _Proxy | None = None
    thread: threading.Thread | None = None
    try:
        spec = manager.up(home, 4, base_port=find_free_base_port(40), timeout=60, log=lambda _msg: None)
        rpc = CometRPC(spec.nodes[0].rpc_url)
        proxy = _Proxy(spec.nodes[0].rpc_url)
        thread = threading.Thread(target=proxy.serve_forever, name="rpc-proxy", daemon=True)
        thread.start()
        client = CometRPC(proxy.url)
        yield Net(home, rpc, proxy, client, localnet_trust_root(home))
        client.close()
        rpc.close()
    finally:
        if proxy is not None:
            proxy.shutdown()
            proxy.server_close()
            proxy.http.close()
        if thread is not None:
            thread.join(5)
        restore_env()
        down_if_running(home)


@pytest.fixture(autouse=True)
def _honest_proxy(net: Net) -> Iterator[None]:
    net.proxy.rewrite = None
    yield
    net.proxy.rewrite = None


def _wait_height(rpc: CometRPC, h: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while rpc.height() < h:
        assert time.monotonic() < deadline, f"height {h} not reached"
        time.sleep(0.1)


def _forge(res: AbciQueryResult, value: bytes) -> tuple[bytes, bytes]:
    """A record proof of `value` for res.key and the root it leads to: what a lying node would serve together."""
    proof = RecordProof.decode(res.proof).proof
    entries = tuple((k, hashlib.sha256(value).digest() if k == res.key else vh) for k, vh in proof.entries)
    idx = bucket_index(res.key)
    h = bucket_hash(entries)
    for lvl, sib in enumerate(proof.siblings):
        h = inner_hash(sib, h) if (idx >> lvl) & 1 else inner_hash(h, sib)
    return RecordProof(value, Proof(key=proof.key, entries=entries, siblings=proof.siblings)).encode(), h


def _forging_rewrite(res: AbciQueryResult, fake: bytes, *, fix_block_id: bool) -> Rewrite:
    """Serve `fake` as the answer with a matching proof and app hash in header H+1 (and its block ID if asked)."""
    fake_proof, fake_root = _forge(res, fake)

    def rewrite(method: str, params: dict[str, Any], result: dict[str, Any]) -> None:
        if method == "abci_query":
            result["response"]["value"] = base64.b64encode(fake).decode()
            result["response"]["proofOps"]["ops"][0]["data"] = base64.b64encode(fake_proof).decode()
            result["response"]["height"] = str(res.height)  # pin the answer to the height whose header is forged
        elif method == "commit" and int(params["height"]) == res.height + 1:
            header = result["signed_header"]["header"]
            header["app_hash"] = fake_root.hex().upper()
            if fix_block_id:
                forged = header_hash(Header.from_json(header))
                result["signed_header"]["commit"]["block_id"]["hash"] = forged.hex().upper()
    return rewrite


def test_header_hash_and_commit_of_every_block_verify(net: Net) -> None:
    top = net.rpc.height()
    for h in range(1, top + 1):
        commit = net.rpc.commit(h)
        signed = SignedHeader.from_rpc(commit)
        # The block ID as /block reports it is an independent witness of CometBFT's own header hash.
        assert header_hash(signed.header).hex().upper() == net.rpc.block(h)["block_id"]["hash"]
        verified = verify_signed_header(signed, net.trust, height=h)
        assert verified.total_power == 40 and 3 * verified.signed_power > 2 * 40


def test_proved_answer_verifies_with_the_genesis_trust_root(net: Net) -> None:
    res = net.query()
    assert res.key == STATE_KEY and b"fedledger-localnet" in res.value
    verdict = check_query_proof(net.client, res, net.trust)
    assert verdict["verified"] is True and verdict["header_signatures_checked"] is True
    assert verdict["header_height"] == res.height + 1
    assert verdict["signed_power"] >= 30 and verdict["total_power"] == 40
    assert verdict["header_hash"] == net.rpc.block(res.height + 1)["block_id"]["hash"]
    weak = check_query_proof(net.client, res, None)
    assert weak["verified"] is True and weak["header_signatures_checked"] is False
    if os.environ.get("FEDLEDGER_WRITE_LIGHTCLIENT_FIXTURE") == "1":
        _write_fixture(net, res)


def test_value_tampered_in_transit_is_refused(net: Net) -> None:
    def rewrite(method: str, params: dict[str, Any], result: dict[str, Any]) -> None:
        if method == "abci_query":
            value = base64.b64decode(result["response"]["value"]).replace(b"localnet", b"evilnet")
            result["response"]["value"] = base64.b64encode(value).decode()

    net.proxy.rewrite = rewrite
    res = net.query()
    assert b"evilnet" in res.value
    with pytest.raises(ProofFailedError, match="not proven by the app hash of block .*: the answer differs"):
        check_query_proof(net.client, res, net.trust)


def test_forged_state_with_forged_app_hash_needs_the_light_client(net: Net) -> None:
    honest = net.query()
    fake = honest.value.replace(b"localnet", b"evilnet")
    net.proxy.rewrite = _forging_rewrite(honest, fake, fix_block_id=False)
    _wait_height(net.rpc, honest.height + 1)
    res = net.query()
    assert res.value == fake and res.height == honest.height
    # Without a trust root the lie goes through: this is the gap the light client closes.
    weak = check_query_proof(net.client, res, None)
    assert weak["verified"] is True and weak["header_signatures_checked"] is False
    with pytest.raises(ProofFailedError, match="fields hash to .* but the commit signs block"):
        check_query_proof(net.client, res, net.trust)


def test_forged_header_with_matching_block_id_fails_the_signatures(net: Net) -> None:
    honest = net.query()
    fake = honest.value.replace(b"localnet", b"evilnet")
    net.proxy.rewrite = _forging_rewrite(honest, fake, fix_block_id=True)
    _wait_height(net.rpc, honest.height + 1)
    with pytest.raises(ProofFailedError, match="signature of validator .* does not verify"):
        check_query_proof(net.client, net.query(), net.trust)


def test_a_different_validator_set_is_refused(net: Net) -> None:
    genesis = json.loads((net.home / "node0" / "cometbft" / "config" / "genesis.json").read_text())
    assert TrustRoot.from_genesis(genesis).validators_hash == net.trust.validators_hash
    other = Validator(hashlib.sha256(b"an outsider").digest(), 10)
    genesis["validators"][0] = {"pub_key": {"type": "tendermint/PubKeyEd25519",
                                            "value": base64.b64encode(other.pub_key).decode()}, "power": "10"}
    with pytest.raises(ProofFailedError, match="not the trusted set"):
        check_query_proof(net.client, net.query(), TrustRoot.from_genesis(genesis))


def _write_fixture(net: Net, res: AbciQueryResult) -> None:
    """Save one genuine answer, its /commit at H+1 (canonical, i.e. from block H+2) and the genesis."""
    _wait_height(net.rpc, res.height + 2)
    genesis = json.loads((net.home / "node0" / "cometbft" / "config" / "genesis.json").read_text())
    data = {
        "about": "captured from a 4-validator FedLedger localnet on CometBFT v0.38.26 by "
                 "tests/integration/test_lightclient_localnet.py (FEDLEDGER_WRITE_LIGHTCLIENT_FIXTURE=1)",
        "genesis": genesis,
        "query": {"path": "/key", "height": res.height,
                  "key": base64.b64encode(res.key).decode(), "value": base64.b64encode(res.value).decode(),
                  "proof": base64.b64encode(RecordProof.decode(res.proof).proof.encode()).decode()},
        "commit": copy.deepcopy(net.rpc.commit(res.height + 1)),
        "block_id_hash": net.rpc.block(res.height + 1)["block_id"]["hash"],
        "commit_height_1": net.rpc.commit(1),
        "block_id_hash_height_1": net.rpc.block(1)["block_id"]["hash"],
    }
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(data, indent=1) + "\n")
