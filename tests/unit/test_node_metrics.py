"""Off-chain Prometheus metrics (sdk/metrics.py): tx latency, timed store fetches, round clocks, the endpoint."""

from __future__ import annotations

import socket

import httpx
import pytest
from prometheus_client import REGISTRY

from fedledger.abci_app.errors import Code
from fedledger.ipfs.base import ContentStore
from fedledger.sdk.metrics import (
    MetricsConfigError,
    RoundClock,
    TimedStore,
    metrics_port_from_env,
    observe_tx,
    serve_metrics,
)
from fedledger.sdk.steps import Action, Step


def value(name: str, **labels: str) -> float:
    got = REGISTRY.get_sample_value(name, labels)
    return 0.0 if got is None else got


class MemoryStore(ContentStore):
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        cid = f"cid{len(self.blobs)}"
        self.blobs[cid] = data
        return cid

    def get(self, cid: str, sha256_hex: str) -> bytes:
        if cid not in self.blobs:
            raise KeyError(cid)
        return self.blobs[cid]

    def has(self, cid: str) -> bool:
        return cid in self.blobs

    def pin(self, cid: str) -> None:
        pass

    def describe(self) -> str:
        return "memory"


def test_tx_latency_by_type_and_result() -> None:
    before = value("fedledger_tx_latency_seconds_count", type="t_metrics", result="OK")
    observe_tx("t_metrics", 0.0, 0)
    observe_tx("t_metrics", 0.0, int(Code.NOT_SELECTED))
    observe_tx("t_metrics", 0.0, None)
    assert value("fedledger_tx_latency_seconds_count", type="t_metrics", result="OK") == before + 1
    assert value("fedledger_tx_latency_seconds_count", type="t_metrics", result="NOT_SELECTED") >= 1
    assert value("fedledger_tx_latency_seconds_count", type="t_metrics", result="TIMEOUT") >= 1


def test_timed_store_times_gets_and_passes_the_rest_through() -> None:
    ok, missing = value("fedledger_store_fetch_seconds_count", result="ok"), \
        value("fedledger_store_fetch_seconds_count", result="KeyError")
    store = TimedStore(MemoryStore())
    cid = store.put(b"x")
    assert store.get(cid, "") == b"x" and store.has(cid) and store.describe() == "memory"
    with pytest.raises(KeyError):
        store.get("nope", "")
    assert value("fedledger_store_fetch_seconds_count", result="ok") == ok + 1
    assert value("fedledger_store_fetch_seconds_count", result="KeyError") == missing + 1
    assert store.blobs == {cid: b"x"}  # an attribute of the backend itself


def test_round_clock_counts_steps_and_times_finished_rounds() -> None:
    now = [100.0]
    clock = RoundClock("agg_test", clock=lambda: now[0])
    clock.step(Step(Action.OPENED_ROUND, "opened", round=1))
    now[0] = 112.5
    clock.step(Step(Action.CLOSED_ROUND, "closed", round=1))
    clock.step(Step(Action.IDLE, "idle"))
    now[0] = 130.0
    clock.step(Step(Action.PROPOSED_VERSION, "proposed", round=1))
    assert value("fedledger_node_steps_total", service="agg_test", action="opened_round") == 1
    assert value("fedledger_node_steps_total", service="agg_test", action="idle") == 1
    assert value("fedledger_node_round_seconds_count", service="agg_test") == 1
    assert value("fedledger_node_round_seconds_sum", service="agg_test") == 30.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_endpoint_serves_the_registry_and_bad_ports_are_clear_errors() -> None:
    port = _free_port()
    serve_metrics(port)
    observe_tx("t_endpoint", 0.0, 0)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'fedledger_tx_latency_seconds_count{result="OK",type="t_endpoint"} 1.0' in text
    with pytest.raises(MetricsConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
        serve_metrics(port)
    assert metrics_port_from_env({}) is None and metrics_port_from_env({"FEDLEDGER_METRICS_PORT": "9464"}) == 9464
    with pytest.raises(MetricsConfigError, match="must be a port number"):
        metrics_port_from_env({"FEDLEDGER_METRICS_PORT": "http"})


def test_the_grafana_dashboard_names_only_metrics_that_exist() -> None:
    import json
    import re
    from pathlib import Path

    from fedledger.abci_app.observer import AppMetrics

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana" / "fedledger.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    names = {n for e in exprs for n in re.findall(r"\b(fedledger_[a-z_]+)", e)}
    known = {m.name for m in AppMetrics().registry.collect()} | {m.name for m in REGISTRY.collect()}
    suffixes = ("_bucket", "_count", "_sum", "_total")
    missing = sorted(n for n in names if n not in known and not any(n.endswith(s) and n[:-len(s)] in known
                                                                     for s in suffixes))
    assert names and missing == [], missing
    assert any("cometbft_" in e for e in exprs)
