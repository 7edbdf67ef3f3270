"""Prometheus metrics on a live localnet: the ABCI app's and CometBFT's endpoints, and a client's own.

A one-validator net (the localnet always turns both node endpoints on) runs a minimal round
through the Python API: three admissions, a task, a round, two commitments accepted, one refused
at the mempool (its signer is no member), the close. The scrapes must show exactly that: the
app counts 2 accepted and 1 rejected commitment with the reason UNAUTHORIZED, one round opened
and closed with its duration, ε spent, and CometBFT reports its height; the client process's own
endpoint (sdk/metrics.py) counts the latency of every tx it sent.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from fedledger.localnet import manager
from fedledger.localnet.config import NetSpec
from fedledger.localnet.dev import dev_credential
from fedledger.localnet.ports import find_free_base_port
from fedledger.sdk.errors import TxRejectedError
from fedledger.sdk.metrics import serve_metrics
from fedledger.sdk.rpc import CometRPC
from fedledger.sdk.submit import Submitter
from tests.integration.conftest import down_if_running
from tests.support import named_key, payload_ref, use_pinned_cometbft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TASK = "metrics"
POLICY = {"epsilon": "50", "delta": "1e-5", "org_epsilon": None}
MECHANISM = {"noise_multiplier": "1", "sample_rate": "0.05", "steps": 60, "clip_norm": "1"}


@dataclass
class Net:
    spec: NetSpec
    rpc: CometRPC
    client_port: int  # this test process's own metrics endpoint
    refused_code: int
    # The client metrics are process-wide: earlier tests in the same pytest process sent txs too, so
    # what this net's txs added is the scrape after them minus the scrape before them.
    client_before: dict[str, float]


def scrape(port: int) -> dict[str, float]:
    """One /metrics scrape as {'name{labels}': value} (labels exactly as the exposition prints them)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) ([-+0-9.eE]+|NaN|[+-]Inf)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    restore_env = use_pinned_cometbft()
    home = tmp_path_factory.mktemp("metrics") / "net"
    rpc: CometRPC | None = None
    try:
        spec = manager.up(home, 1, base_port=find_free_base_port(40), block_time_ms=200, timeout=120,
                          log=lambda _msg: None)
        rpc = CometRPC(spec.nodes[0].rpc_url)
        client_port = _free_port()
        serve_metrics(client_port)
        client_before = scrape(client_port)
        chain_id = str(rpc.status()["node_info"]["network"])
        agg, trainers = named_key("metrics-agg"), [named_key(f"metrics-t{i}") for i in range(2)]
        owner = Submitter(rpc, agg, chain_id)
        owner.send("admit", {"credential": dev_credential(home, agg, "aggregator")})
        subs = [Submitter(rpc, t, chain_id) for t in trainers]
        for s in subs:
            s.send("admit", {"credential": dev_credential(home, s.key, "trainer")})
        owner.send("create_task", {"task_id": TASK, "model_spec": "mlp-digits", "round_size": 2,
                                   "min_contributions": 1, "deadline_blocks": 1000, "aggregator": agg.public_hex,
                                   "initial_model": payload_ref("v0"), "privacy": POLICY})
        owner.send("open_round", {"task_id": TASK, "round": 1})
        for i, s in enumerate(subs):
            s.send("commit_contribution", {"task_id": TASK, "round": 1, "base_version": 0, "num_examples": 50 + i,
                                           "dp": MECHANISM, **payload_ref(f"u{i}")})
        outsider = Submitter(rpc, named_key("metrics-outsider"), chain_id)
        with pytest.raises(TxRejectedError) as refused:
            outsider.send("commit_contribution", {"task_id": TASK, "round": 1, "base_version": 0,
                                                  "num_examples": 5, "dp": MECHANISM, **payload_ref("evil")})
        owner.send("close_round", {"task_id": TASK, "round": 1})
        yield Net(spec, rpc, client_port, refused.value.code, client_before)
    finally:
        if rpc is not None:
            rpc.close()
        restore_env()
        down_if_running(home)


def test_the_app_counts_what_the_chain_decided(net: Net) -> None:
    from fedledger.abci_app.errors import Code

    assert net.refused_code == Code.UNAUTHORIZED
    m = scrape(net.spec.nodes[0].app_metrics_port)
    assert m['fedledger_app_commitments_total{reason="OK",result="accepted",stage="block"}'] == 2
    assert m['fedledger_app_commitments_total{reason="UNAUTHORIZED",result="rejected",stage="checktx"}'] == 1
    assert not any(k.startswith("fedledger_app_commitments_total") and 'stage="block"' in k and "rejected" in k
                   for k in m)
    assert m['fedledger_app_txs_total{code="OK",type="admit"}'] == 3
    assert m['fedledger_app_rounds_total{event="opened",status="open"}'] == 1
    assert sum(v for k, v in m.items() if k.startswith('fedledger_app_rounds_total{event="closed"')) == 1
    assert m["fedledger_app_round_duration_blocks_count"] == 1 and m["fedledger_app_round_duration_blocks_sum"] >= 2
    assert m["fedledger_app_round_duration_seconds_sum"] > 0
    assert m[f'fedledger_app_epsilon_spent_total{{task="{TASK}"}}'] > 0
    height = net.rpc.height()
    assert 0 < m["fedledger_app_height"] <= height and m["fedledger_app_blocks_total"] >= m["fedledger_app_height"] - 1


def test_cometbft_reports_its_own_metrics(net: Net) -> None:
    deadline = time.monotonic() + 30
    while True:
        m = scrape(net.spec.nodes[0].cometbft_metrics_port)
        heights = [v for k, v in m.items() if k.startswith("cometbft_consensus_height")]
        if heights and heights[0] > 5 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert heights and heights[0] > 5, sorted(m)[:20]
    assert any(k.startswith("cometbft_mempool_size") for k in m)


def test_the_client_endpoint_counts_its_tx_latencies(net: Net) -> None:
    after = scrape(net.client_port)

    def added(name: str) -> float:
        return after.get(name, 0.0) - net.client_before.get(name, 0.0)

    assert added('fedledger_tx_latency_seconds_count{result="OK",type="commit_contribution"}') == 2
    assert added('fedledger_tx_latency_seconds_count{result="OK",type="admit"}') == 3
    assert added('fedledger_tx_latency_seconds_count{result="UNAUTHORIZED",type="commit_contribution"}') == 1
    assert added('fedledger_tx_latency_seconds_sum{result="OK",type="commit_contribution"}') > 0
